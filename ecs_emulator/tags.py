"""Tags: ECS's rules for user tags, propagation and managed tags on tasks, and the tag APIs' storage.

ECS adds its own ``aws:ecs:*`` tags to a task started with ``enableECSManagedTags``; users may not
write ``aws:`` tags themselves. StopTask deletes the task's tags ("Any tags associated with the task
will be deleted", ECS API model, StopTask).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from ecs_emulator.errors import InvalidParameterException

# Tag rules (ECS API model, Tag): 50 per resource, key 1-128, value 0-256, no aws: prefix.
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
_TAG_PUNCTUATION = set("+-=._:/@ ")
# The managed tag ECS puts on a task of a cluster (Developer Guide, "Tagging your Amazon ECS
# resources", managed tags). Tasks of a service also get aws:ecs:serviceName; RunTask tasks have none.
MANAGED_CLUSTER_TAG = "aws:ecs:clusterName"


def _tag_text_ok(text: str) -> bool:
    return all(ch in _TAG_PUNCTUATION or unicodedata.category(ch)[0] in "LNZ" for ch in text)


def validate_tags(tags: Sequence[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    """Check tags against ECS's rules; return them as plain dicts."""
    if not tags:
        return []
    if len(tags) > MAX_TAGS:
        raise InvalidParameterException(f"Tags can not be more than {MAX_TAGS}.")
    seen: set[str] = set()
    out = []
    for tag in tags:
        key, value = tag.get("key"), tag.get("value", "")
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_TAG_KEY:
            raise InvalidParameterException(f"Tag key must be between 1 and {MAX_TAG_KEY} characters.")
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
            raise InvalidParameterException(f"Tag value must be at most {MAX_TAG_VALUE} characters.")
        if key.lower().startswith("aws:") or value.lower().startswith("aws:"):
            raise InvalidParameterException("Tag keys and values may not begin with the reserved prefix 'aws:'.")
        if not _tag_text_ok(key) or not _tag_text_ok(value):
            raise InvalidParameterException(
                f"Tag '{key}' contains characters that are not allowed. Allowed: letters, numbers, spaces "
                "and + - = . _ : / @"
            )
        if key in seen:
            raise InvalidParameterException(f"Duplicate tag key: {key}")
        seen.add(key)
        out.append({"key": key, "value": value})
    return out


def task_tags(
    req: Mapping[str, Any],
    definition_tags: Sequence[Mapping[str, str]],
    cluster_name: str,
) -> list[dict[str, str]]:
    """The tags a new task carries: the request's, then propagated ones, then ECS's managed tags."""
    tags = validate_tags(req.get("tags"))
    if req.get("propagateTags") == "TASK_DEFINITION":
        given = {t["key"] for t in tags}
        tags += [dict(t) for t in definition_tags if t["key"] not in given]
    if req.get("enableECSManagedTags"):
        tags.append({"key": MANAGED_CLUSTER_TAG, "value": cluster_name})
    return tags


def merge_tags(current: list[dict[str, str]], new: Sequence[Mapping[str, Any]]) -> None:
    """TagResource: add or overwrite ``new`` in ``current`` (managed tags stay; none may be written)."""
    checked = validate_tags(new)
    merged = {t["key"]: t["value"] for t in current} | {t["key"]: t["value"] for t in checked}
    user = [{"key": k, "value": v} for k, v in merged.items() if not k.startswith("aws:")]
    validate_tags(user)  # the 50-tag limit counts user tags only
    current[:] = [{"key": k, "value": v} for k, v in merged.items()]


def remove_tags(current: list[dict[str, str]], keys: Sequence[str]) -> None:
    """UntagResource: drop ``keys`` from ``current``."""
    gone = set(keys)
    current[:] = [t for t in current if t["key"] not in gone]
