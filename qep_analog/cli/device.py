"""``qep-analog device``: list, show and validate device profiles; map a model onto a device."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from qep_analog.cli.common import Parser, add_calibration_options, warn

BASES = {"auto": None, "as-written": False, "rotated": True}


def register(commands: Any) -> None:
    device = commands.add_parser("device", help="device profiles: list, show, validate, map a model")
    actions = device.add_subparsers(dest="action", required=True, parser_class=Parser)

    listing = actions.add_parser("list", help="the profiles on the search path, and where each is from")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_list)

    show = actions.add_parser("show", help="a profile in internal units (rad/µs, µs, µm)")
    show.add_argument("name", help="built-in name or profile file")
    show.add_argument("--relaxed", action="store_true", help="the emulation variant (limits lifted)")
    add_calibration_options(show)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=run_show)

    validate = actions.add_parser("validate", help="check a profile file (exit 0 valid, 2 invalid)")
    validate.add_argument("file", help="profile file (qep-device/1)")
    validate.set_defaults(handler=run_validate)

    mapping = actions.add_parser("map", help="which parts of a model a device realises, and how")
    mapping.add_argument("model", help="model file (qep-model/1)")
    mapping.add_argument("--device", required=True, help="built-in name or profile file")
    mapping.add_argument("--relaxed", action="store_true", help="map onto the emulation variant")
    add_calibration_options(mapping)
    mapping.add_argument("--basis", choices=BASES, default="auto", help="model basis (rotated: X <-> Z)")
    mapping.add_argument("--json", action="store_true", help="print JSON")
    mapping.set_defaults(handler=run_map)


def run_list(args: argparse.Namespace) -> int:
    from qep_analog import QEPError, library_entries, read_profile

    rows: list[dict[str, Any]] = []
    for name, entry in library_entries("devices").items():
        try:
            profile = read_profile(name)
        except QEPError as exc:  # one broken file: list the others, skip this one with a warning
            _warn_skipped(entry.path, str(exc), entry.shadows)
            continue
        rows.append({"name": name, "file": str(entry.path), "origin": entry.origin,
                     "shadows": list(entry.shadows), "platform": profile.platform,
                     "version": profile.version, "description": profile.description})  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    width = max([len(r["name"]) for r in rows] + [4])
    for row in rows:
        origin = str(row["origin"]) + "".join(f", shadows {o}" for o in row["shadows"])
        print(
            f"{row['name']:<{width}}  {row['platform']:<7}  v{row['version']}  [{origin}]  "
            f"{row['description']}"
        )
    return 0


def _warn_skipped(path: Path, reason: str, shadows: tuple[str, ...]) -> None:
    """One line on stderr: the profile file ``path`` is not listed, and why."""
    reason = " ".join(reason.removeprefix(f"{path}: ").split())  # the path is named once, one line
    hidden = f"; it hides the {' and '.join(shadows)} profile of that name" if shadows else ""
    warn(f"device list: skipped {path}: {reason}{hidden}")


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


#: how an absent value reads where it means "none" rather than "no limit"
_ABSENT = {
    "ramp_duration_us": "ramp_duration: none measured",
    "markovian_dephasing_time_us": "markovian_dephasing_time: none (no Markovian dephasing)",
    "relaxation_time_us": "relaxation_time: none (no T1 decay)",
    "depolarizing_time_us": "depolarizing_time: none (no depolarizing noise)",
    "laser_waist_um": "laser_waist: none (a uniform drive)",
}


def _shown(key: str, value: Any) -> str:
    """``max_rabi: 12.5664 rad/µs (2π·2 MHz)`` from ``max_rabi_rad_per_us: 12.566...``."""
    if key in _ABSENT and value is None:
        return _ABSENT[key]
    if key == "max_age_us":
        return f"max_age: {'no limit' if value is None else _age(value / 1e6)}"
    for suffix, unit in _SUFFIX_UNITS.items():
        if key.endswith(suffix):
            name = key.removesuffix(suffix)
            if value is None:
                return f"{name}: no limit"
            values = value if isinstance(value, list) else [value]
            from qep_analog import with_unit

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

    from qep_analog import calibration_report, history_records, read_profile, resolve

    # the file and the history read once: the values shown and the report come from the same records
    nominal = read_profile(args.name)
    records = () if args.nominal else history_records(nominal, args.history)
    profile = resolve(nominal, records)
    profile = profile.relaxed() if args.relaxed else profile
    document = profile.to_document()
    in_force = [f.to_document() for f in calibration_report(nominal, records)]
    stale = [f for f in in_force if f["stale"]]
    for field in stale:
        if field["age_s"] < 0:
            why = f"is dated {_age(-field['age_s'])} in the future (a wrong clock or record)"
        else:
            limit = _age(profile.calibration.max_age / 1e6)
            why = f"is {_age(field['age_s'])} old, older than the profile's max_age {limit}"
        warn(f"device {profile.name!r}: calibrated {field['field']} {why}")
    if args.json:
        document["snapshot_hash"] = profile.snapshot_hash
        document["calibration_in_force"] = None if args.nominal else in_force
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    print(
        f"{document['name']} ({document['platform']}, version {document['version']}, {document['variant']})"
    )
    if document["description"]:
        print(document["description"])
    print(f"file: {document['source']}")
    print(f"snapshot: {profile.snapshot_hash}")
    for section in ("capabilities", "noise", "calibration"):
        print(f"{section}:")
        print("\n".join(_lines(document[section])))
    if args.nominal:
        print("calibration in force: none (--nominal: the file's values)")
    elif not in_force:
        print("calibration in force: none (no usable records in the history)")
    else:
        print("calibration in force:")
        for field in in_force:
            value = field["value"]
            shown = (
                f"[{', '.join(f'{v:.6g}' for v in value)}]" if isinstance(value, list) else f"{value:.6g}"
            )
            ids = field["record_ids"]
            record = ids[0] if len(ids) == 1 else f"{ids[0]} … ({len(ids)} records)"
            flag = "  STALE" if field["stale"] else ""
            unit = _record_unit(field["field"])
            when = f"{_age(field['age_s'])} old" if field["age_s"] >= 0 else "dated in the future"
            print(
                f"  {field['field']}: {shown} ± {field['uncertainty']:.2g}{unit}  record {record}, "
                f"{when}{flag}"
            )
    return 0


def _record_unit(field: str) -> str:
    """`` rad/µs`` etc.: the unit of a calibrated profile field ('' when dimensionless)."""
    from qep_analog import FIELDS

    spec = FIELDS.get(field) or next((f for f in FIELDS.values() if f.site_field == field), None)
    return f" {spec.unit}" if spec is not None and spec.unit else ""


def _age(seconds: float) -> str:
    """``3.2 h``, ``12 min``, ``4.0 d`` from seconds."""
    if seconds == float("inf"):
        return "unlimited"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if abs(seconds) >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def run_validate(args: argparse.Namespace) -> int:
    from qep_analog import read_profile

    profile = read_profile(args.file)
    mirrored = ""
    if getattr(profile.capabilities, "pulser_device", None) is not None:  # a Rydberg array's field
        from qep_analog import to_pulser_device

        mirrored = f", within the limits of Pulser's {to_pulser_device(profile).name}"
    valid = f"valid {profile.platform} profile {profile.name!r}, version {profile.version}"
    print(f"{args.file}: {valid}{mirrored}")
    return 0


def run_map(args: argparse.Namespace) -> int:
    from qep_analog import load_model, load_profile, map_model, mapping_table

    model = load_model(args.model)
    profile = load_profile(args.device, relaxed=args.relaxed, nominal=args.nominal, history=args.history)
    report = map_model(model, profile, BASES[args.basis])
    if args.json:
        print(
            json.dumps(
                {**report.to_document(), "profile": profile.provenance()}, indent=2, ensure_ascii=False
            )
        )
    else:
        print(mapping_table(report))
    return 0
