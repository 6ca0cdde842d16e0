"""Whether a finished result in an output folder was computed under the settings of this run.

A rerun into the same folder reuses a finished result only when everything that changes its
numbers is the same, and otherwise refuses, naming the first difference: a silently reused
result of other settings would be a wrong number.
"""

from __future__ import annotations


def first_difference(have: dict | None, want: dict, prefix: str = "") -> str:
    if have is None:
        return "no recorded identity (an older or damaged result)"
    for key in want:
        if isinstance(want[key], dict) and isinstance(have.get(key), dict):
            inner = first_difference(have[key], want[key], f"{prefix}{key}.")
            if inner:
                return inner
        elif have.get(key, "<missing>") != want[key]:
            return f"{prefix}{key} = {have.get(key, '<missing>')!r}, this run has {want[key]!r}"
    return ""
