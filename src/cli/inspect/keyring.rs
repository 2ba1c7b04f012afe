//! The keyring types without certificates (psk, dhparam, openvpn, remote_access, uftp) and
//! KMIP authentication keys: what they are, their size, and the fingerprint the status
//! shows — keyed with the Secret's salt for secret material, never the material itself.

use crate::material::dh;
use crate::material::keyring::{
    DHPARAM_PEM, DhRecipe, HTPASSWD, Material, PASSWORD, PSK, PSK_HEX, Recipe, STATIC_KEY,
    UFTP_KEY, UFTP_PUB, USERNAME,
};
use crate::material::pkey::KeyKind;
use crate::material::random::htpasswd_line_verifies;
use crate::reconcile::kms_auth_key::{self, KEY_ID, KEY_TAG, PASSPHRASE};

use super::{Context, Data, Section, yes_no};

/// The sections of the keyring and KMIP material in `data`.
pub(super) fn sections(data: &Data, ctx: &Context<'_>) -> Vec<Section> {
    let has = |key: &str| data.contains_key(key);
    let mut out = Vec::new();
    if has(PSK) || has(PSK_HEX) {
        out.push(psk(data, ctx));
    }
    if has(DHPARAM_PEM) {
        out.push(dhparam(data, ctx));
    }
    if has(STATIC_KEY) {
        out.push(openvpn(data, ctx));
    }
    if has(USERNAME) && has(PASSWORD) {
        out.push(remote_access(data, ctx));
    }
    if has(UFTP_KEY) || has(UFTP_PUB) {
        out.push(uftp(data, ctx));
    }
    if has(PASSPHRASE) && has(KEY_ID) {
        out.push(kms(data, ctx));
    }
    out
}

/// Reads `recipe`'s material (the recipe's sizes do not matter for reading); a problem
/// becomes a field.
fn read(recipe: &Recipe, data: &Data, section: &mut Section) -> Option<Material> {
    match recipe.read(data) {
        Ok(material) => Some(material),
        Err(e) => {
            section.field("Problem", e.to_string());
            None
        }
    }
}

/// The status fingerprint of secret `material`: keyed with the Secret's salt, or none.
fn keyed_fingerprint(material: &Material, section: &mut Section, ctx: &Context<'_>) {
    let Some(salt) = ctx.salt else {
        section.field(
            "Fingerprint",
            "none: the Secret has no keysmith.dev/fingerprint-salt (an unkeyed hash would let anyone test guesses)",
        );
        return;
    };
    public_fingerprint(material, salt, section);
}

fn public_fingerprint(material: &Material, salt: &str, section: &mut Section) {
    match material.fingerprint(salt.as_bytes()) {
        Ok(fingerprint) => {
            section.field("Fingerprint", fingerprint.clone());
            section.canonical = Some(fingerprint);
        }
        Err(e) => section.field("Fingerprint", e.to_string()),
    }
}

fn psk(data: &Data, ctx: &Context<'_>) -> Section {
    let mut section = Section::new("Pre-shared key (psk, psk.hex)", &[PSK, PSK_HEX]);
    let Some(material) = read(&Recipe::Psk { length: 0 }, data, &mut section) else {
        return section;
    };
    let size = material.size().unwrap_or_default();
    section.field("Size", format!("{size} bytes ({} bits)", size * 8));
    section.field("psk.hex", "the hex form of psk");
    keyed_fingerprint(&material, &mut section, ctx);
    section
}

fn dhparam(data: &Data, ctx: &Context<'_>) -> Section {
    let mut section = Section::new("DH parameters (dhparam.pem)", &[DHPARAM_PEM]);
    let recipe = Recipe::Dh(DhRecipe::Generate(0));
    let Some(material) = read(&recipe, data, &mut section) else {
        return section;
    };
    if let Material::Dh(pem) = &material
        && let Ok(info) = dh::parse(pem.as_bytes())
    {
        section.field("Prime", format!("{} bits, generator 2", info.bits));
        let group = info.ffdhe.map_or_else(
            || "generated safe prime (not an RFC 7919 group)".to_owned(),
            |g| format!("RFC 7919 {g:?}"),
        );
        section.field("Group", group);
    }
    public_fingerprint(&material, ctx.salt.unwrap_or_default(), &mut section);
    section
}

fn openvpn(data: &Data, ctx: &Context<'_>) -> Section {
    let mut section = Section::new("OpenVPN static key (static.key)", &[STATIC_KEY]);
    let Some(material) = read(&Recipe::OpenVpn, data, &mut section) else {
        return section;
    };
    section.field("Format", "OpenVPN Static key V1, 2048 bits");
    keyed_fingerprint(&material, &mut section, ctx);
    section
}

fn remote_access(data: &Data, ctx: &Context<'_>) -> Section {
    let mut section = Section::new(
        "Remote-access credentials (username, password, htpasswd)",
        &[USERNAME, PASSWORD, HTPASSWD],
    );
    let recipe = Recipe::RemoteAccess {
        username: String::new(),
        password_length: 0,
    };
    let Some(material) = read(&recipe, data, &mut section) else {
        return section;
    };
    if let Material::RemoteAccess {
        username,
        password,
        htpasswd,
    } = &material
    {
        section.field("Username", username.clone());
        section.field(
            "Password",
            format!("{} characters", password.expose().chars().count()),
        );
        let verifies = htpasswd_line_verifies(htpasswd, username, password);
        section.field(
            "htpasswd",
            format!(
                "bcrypt line; verifies the username and password: {}",
                yes_no(verifies)
            ),
        );
    }
    keyed_fingerprint(&material, &mut section, ctx);
    section
}

fn uftp(data: &Data, ctx: &Context<'_>) -> Section {
    let mut section = Section::new("UFTP key pair (uftp.key, uftp.pub)", &[UFTP_KEY, UFTP_PUB]);
    let Some(material) = read(&Recipe::Uftp(KeyKind::EcdsaP256), data, &mut section) else {
        return section;
    };
    if let Material::Uftp(key) = &material {
        section.field("Type", key.kind().to_string());
        section.field("uftp.pub", "the public key of uftp.key");
    }
    public_fingerprint(&material, ctx.salt.unwrap_or_default(), &mut section);
    section
}

fn kms(data: &Data, ctx: &Context<'_>) -> Section {
    let mut section = Section::new(
        "KMIP authentication key (passphrase, key-id, key-tag)",
        &[PASSPHRASE, KEY_ID, KEY_TAG],
    );
    let key = match kms_auth_key::read_key(data) {
        Ok(key) => key,
        Err(why) => {
            section.field("Problem", why);
            return section;
        }
    };
    section.field("Key id", key.key_id.clone());
    section.field("Key tag", key.key_tag.clone());
    section.field(
        "Passphrase",
        format!("{} characters", key.passphrase.expose().chars().count()),
    );
    match ctx.salt {
        Some(salt) => {
            let fingerprint = kms_auth_key::fingerprint(&key.passphrase, salt);
            section.field("Fingerprint", fingerprint.clone());
            section.canonical = Some(fingerprint);
        }
        None => section.field(
            "Fingerprint",
            "none: the Secret has no keysmith.dev/fingerprint-salt",
        ),
    }
    section
}
