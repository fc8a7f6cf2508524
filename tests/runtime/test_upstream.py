"""Every private verl name pixelis_verl reaches for still exists in the pinned verl (`runtime/upstream.py`)."""

import importlib

import pytest

from pixelis_verl.runtime.upstream import PRIVATE_NAMES


@pytest.mark.parametrize(("module", "path"), PRIVATE_NAMES)
def test_each_private_verl_name_exists_in_the_pin(module, path):
    found = importlib.import_module(module)
    for part in path.split("."):
        found = getattr(found, part)  # AttributeError names what a verl bump removed
    assert found is not None


def test_no_private_verl_name_is_used_outside_the_wrapper_modules():
    """The names of `PRIVATE_NAMES` appear only in runtime/upstream.py (and monkeypatches in runtime/patches.py)."""
    from pixelis_verl.paths import REPO_ROOT

    names = {path.rsplit(".", 1)[-1] for _, path in PRIVATE_NAMES}
    allowed = {"upstream.py", "patches.py"}
    found = []
    for file in (REPO_ROOT / "pixelis_verl").rglob("*.py"):
        if file.name in allowed:
            continue
        for number, line in enumerate(file.read_text().splitlines(), start=1):
            if line.lstrip().startswith(("def ", "async def ")):
                continue  # overriding a hook in a subclass is extension, not reaching in
            found += [f"{file.relative_to(REPO_ROOT)}:{number}: {name}" for name in names if f".{name}" in line]
    assert not found
