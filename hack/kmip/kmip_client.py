"""PyKMIP's own client, driven by the test harness (tests/support/kmip.rs) to check what
keysmith's Rust client did against a real KMIP server.

Usage: python kmip_client.py --port P --cert C --key K --ca CA COMMAND [ARGS]

Commands; each prints one JSON document on stdout, or one line on stderr and exits 1:
  versions                     {"versions": ["2.0", "1.4", ...]}: Discover Versions
  register-password NAME HEX   {"uid": UID}: registers a Secret Data object of type Password
                               with the Name NAME and the bytes HEX
  locate NAME                  {"uids": [...]}: Locate by the Name attribute
  get UID                      {"object_type", "data_type", "value_hex", "names", "state"}
  destroy UID                  {}: Destroy (PyKMIP refuses it for Active objects)
"""

import argparse
import json
import logging
import sys
import warnings

# PyKMIP 0.11.0 still names ciphers that cryptography moved to `decrepit`.
warnings.filterwarnings("ignore", message=".*has been moved to cryptography.hazmat.decrepit")

from kmip import enums  # noqa: E402
from kmip.pie import client, objects  # noqa: E402

# Without a config file the client warns that none of PyKMIP's default ones exist.
logging.getLogger("kmip.core.config_helper").setLevel(logging.ERROR)


def attribute_values(kmip, uid, name):
    _, attributes = kmip.get_attributes(uid, [name])
    return [a.attribute_value for a in attributes if a.attribute_name.value == name]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ca", required=True)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("versions")
    register = commands.add_parser("register-password")
    register.add_argument("name")
    register.add_argument("hex")
    locate = commands.add_parser("locate")
    locate.add_argument("name")
    get = commands.add_parser("get")
    get.add_argument("uid")
    destroy = commands.add_parser("destroy")
    destroy.add_argument("uid")
    args = parser.parse_args()

    kmip = client.ProxyKmipClient(
        hostname=args.host,
        port=args.port,
        cert=args.cert,
        key=args.key,
        ca=args.ca,
        ssl_version="PROTOCOL_TLSv1_2",
        # A section no config file has: every setting comes from the arguments above.
        config="keysmith-test",
    )
    with kmip:
        if args.command == "versions":
            response = kmip.proxy.discover_versions()
            if response.result_status.value != enums.ResultStatus.SUCCESS:
                raise RuntimeError("Discover Versions: {0}".format(response.result_message))
            versions = [
                "{0}.{1}".format(v.major, v.minor) for v in response.protocol_versions
            ]
            result = {"versions": versions}
        elif args.command == "register-password":
            secret = objects.SecretData(
                bytes.fromhex(args.hex),
                enums.SecretDataType.PASSWORD,
                masks=[enums.CryptographicUsageMask.VERIFY],
                name=args.name,
            )
            result = {"uid": kmip.register(secret)}
        elif args.command == "locate":
            name = kmip.attribute_factory.create_attribute(enums.AttributeType.NAME, args.name)
            result = {"uids": list(kmip.locate(attributes=[name]))}
        elif args.command == "get":
            obj = kmip.get(args.uid)
            # Get returns the value only; names and state are attributes.
            names = [n.name_value.value for n in attribute_values(kmip, args.uid, "Name")]
            states = [s.value.name for s in attribute_values(kmip, args.uid, "State")]
            data_type = getattr(obj, "data_type", None)
            result = {
                "object_type": obj.object_type.name,
                "data_type": data_type.name if data_type is not None else None,
                "value_hex": obj.value.hex(),
                "names": names,
                "state": states[0] if states else None,
            }
        elif args.command == "destroy":
            kmip.destroy(args.uid)
            result = {}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line the harness can show
        sys.stderr.write("{0}: {1}\n".format(type(e).__name__, e))
        sys.exit(1)
