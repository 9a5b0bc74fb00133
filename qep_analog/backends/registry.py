"""Backends by name, imported only when named: a backend's heavy libraries (QuTiP, TeNPy, a cloud
SDK) load when it is asked for, and an unknown name is one error listing the known ones."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from qep_analog.errors import ConfigError

#: backend name -> "module:class"
BACKENDS: dict[str, str] = {
    "exact": "qep_analog.backends.exact:ExactBackend",
    "mps": "qep_analog.backends.exact:MPSBackend",
    "qutip": "qep_analog.backends.emulated:QutipBackend",
    "pulser": "qep_analog.backends.emulated:PulserBackend",
    "fake-lab": "qep_analog.backends.lab:LabBackend",
    "bundle": "qep_analog.backends.bundle:BundleBackend",
    "pasqal-cloud": "qep_analog.backends.cloud:PasqalCloudBackend",
    "emu-mps": "qep_analog.backends.emu:EmuMPSBackend",
}
#: the Python package a backend needs beyond the core, and the extra that installs it
EXTRAS: dict[str, tuple[str, str]] = {
    "pasqal-cloud": ("pasqal_cloud", "cloud"),
    "emu-mps": ("emu_mps", "emu"),
}


def backend_class(name: str) -> Any:
    """The class of the backend called ``name``."""
    if name not in BACKENDS:
        raise ConfigError(f"backend {name!r}: unknown (known: {', '.join(BACKENDS)})")
    module, _, attribute = BACKENDS[name].partition(":")
    try:
        return getattr(import_module(module), attribute)
    except ModuleNotFoundError as exc:
        raise missing_package(name, exc.name or "") from None


def missing_package(name: str, package: str = "") -> ConfigError:
    """The error for backend ``name`` when its package is not installed (``package``: the one that
    was not found, if the backend has no entry in :data:`EXTRAS`)."""
    package, extra = EXTRAS.get(name, (package, ""))
    hint = f": pip install 'qep-analog[{extra}]'" if extra else ""
    return ConfigError(f"backend {name!r}: needs the package {package!r}, not installed{hint}")


def make_backend(name: str, *args: Any, **options: Any) -> Any:
    """A backend by name, constructed with ``args`` and ``options`` (see each backend's class)."""
    return backend_class(name)(*args, **options)
