"""``qep-analog device``: list, show and validate device profiles; map a model onto a device."""

from __future__ import annotations

import argparse
import json
from typing import Any

from qep_analog.cli.common import Parser
from qep_analog.devices.units import with_unit

BASES = {"auto": None, "as-written": False, "rotated": True}


def register(commands: Any) -> None:
    device = commands.add_parser("device", help="device profiles: list, show, validate, map a model")
    actions = device.add_subparsers(dest="action", required=True, parser_class=Parser)

    listing = actions.add_parser("list", help="the built-in profiles")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_list)

    show = actions.add_parser("show", help="a profile in internal units (rad/µs, µs, µm)")
    show.add_argument("name", help="built-in name or profile file")
    show.add_argument("--relaxed", action="store_true", help="the emulation variant (limits lifted)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=run_show)

    validate = actions.add_parser("validate", help="check a profile file (exit 0 valid, 2 invalid)")
    validate.add_argument("file", help="profile file (qep-device/1)")
    validate.set_defaults(handler=run_validate)

    mapping = actions.add_parser("map", help="which parts of a model a device realises, and how")
    mapping.add_argument("model", help="model file (qep-model/1)")
    mapping.add_argument("--device", required=True, help="built-in name or profile file")
    mapping.add_argument("--relaxed", action="store_true", help="map onto the emulation variant")
    mapping.add_argument("--basis", choices=BASES, default="auto", help="model basis (rotated: X <-> Z)")
    mapping.add_argument("--json", action="store_true", help="print JSON")
    mapping.set_defaults(handler=run_map)


def run_list(args: argparse.Namespace) -> int:
    from qep_analog.devices.profile import list_profiles, load_profile

    rows: list[dict[str, Any]] = []
    for name, path in list_profiles().items():
        profile = load_profile(path)
        rows.append({"name": name, "platform": profile.platform, "version": profile.version,
                     "description": profile.description, "file": str(path)})  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    width = max([len(r["name"]) for r in rows] + [4])
    for row in rows:
        print(f"{row['name']:<{width}}  {row['platform']:<7}  v{row['version']}  {row['description']}")
    return 0


_SUFFIX_UNITS = {
    "_rad_per_us_um6": "rad/µs·µm⁶",
    "_rad_per_us2": "rad/µs²",
    "_rad_per_us": "rad/µs",
    "_us": "µs",
    "_um": "µm",
    "_nm": "nm",
    "_amu": "amu",
    "_deg": "deg",
}


def _shown(key: str, value: Any) -> str:
    """``max_rabi: 12.5664 rad/µs (2π·2 MHz)`` from ``max_rabi_rad_per_us: 12.566...``."""
    for suffix, unit in _SUFFIX_UNITS.items():
        if key.endswith(suffix):
            name = key.removesuffix(suffix)
            if value is None:
                return f"{name}: no limit"
            values = value if isinstance(value, list) else [value]
            shown = ", ".join(
                with_unit(v, "angular_frequency") if unit == "rad/µs" else f"{v:.6g} {unit}" for v in values
            )
            return f"{name}: {f'[{shown}]' if isinstance(value, list) else shown}"
    return f"{key}: {'no limit' if value is None else value}"


def _lines(section: dict[str, Any], indent: str = "  ") -> list[str]:
    out = []
    for key, value in section.items():
        if isinstance(value, dict):
            out.append(f"{indent}{key}:")
            out += _lines(value, indent + "  ")
        else:
            out.append(indent + _shown(key, value))
    return out


def run_show(args: argparse.Namespace) -> int:
    from qep_analog.devices.profile import load_profile

    document = load_profile(args.name, relaxed=args.relaxed).to_document()
    if args.json:
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    print(
        f"{document['name']} ({document['platform']}, version {document['version']}, {document['variant']})"
    )
    if document["description"]:
        print(document["description"])
    print(f"file: {document['source']}")
    for section in ("capabilities", "noise", "calibration"):
        print(f"{section}:")
        print("\n".join(_lines(document[section])))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from qep_analog.devices.profile import load_profile

    profile = load_profile(args.file)
    print(f"{args.file}: valid {profile.platform} profile {profile.name!r}, version {profile.version}")
    return 0


def run_map(args: argparse.Namespace) -> int:
    from qep_analog.devices.mapping import map_model, mapping_table
    from qep_analog.devices.profile import load_profile
    from qep_analog.model.model_file import load_model

    model = load_model(args.model)
    report = map_model(model, load_profile(args.device, relaxed=args.relaxed), BASES[args.basis])
    if args.json:
        print(json.dumps(report.to_document(), indent=2, ensure_ascii=False))
    else:
        print(mapping_table(report))
    return 0
