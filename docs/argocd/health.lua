-- Argo CD health check for every keysmith kind (CertificateKeyPair, SshKey, KeyringSecret,
-- KmsAuthKey, KeyManager). Argo CD runs it with the live object as `obj`.
--   Healthy      Ready=True, for the current spec, nothing being generated
--   Progressing  not yet reconciled for the current spec, or a slow generation running
--                (Generating=True, or Ready=False with reason Generating)
--   Degraded     Ready=False for any other reason (the reason and message say why)
local hs = {}
local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local generation = obj.metadata.generation
local observed = obj.status ~= nil and obj.status.observedGeneration or nil
local ready = condition("Ready")
if ready == nil or observed == nil or (generation ~= nil and observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for keysmith to reconcile the current spec"
  return hs
end

local generating = condition("Generating")
if generating ~= nil and generating.status == "True" then
  hs.status = "Progressing"
  hs.message = generating.message or "Generating"
  return hs
end

local summary = (ready.reason or "") .. ": " .. (ready.message or "")
if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.reason == "Generating" then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
hs.message = summary
return hs
