"""Stops with one line when a compiled module (`make setup` builds them from the .pyx files) is missing or
older than its source, as after a `git pull` that changed one: not a traceback, and not a stale module that
computes what the source no longer says."""
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES


def unbuilt_modules(root=os.path.dirname(os.path.abspath(__file__))):
    """The .pyx files under `root` without a compiled module at least as new as themselves."""
    unbuilt = []
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(".pyx"):
                source = os.path.join(folder, name)
                built = [source[:-4] + suffix for suffix in EXTENSION_SUFFIXES]
                if not any(os.path.isfile(b) and os.path.getmtime(b) >= os.path.getmtime(source) for b in built):
                    unbuilt.append(os.path.relpath(source, os.path.dirname(root)))
    return unbuilt


_unbuilt = unbuilt_modules()
if _unbuilt:
    sys.exit(f"{', '.join(_unbuilt)}: not compiled since last changed; run `make setup` first")
