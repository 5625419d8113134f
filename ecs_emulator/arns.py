"""ECS resource names: building ARNs, and resolving a task reference within one cluster.

ECS accepts a task as its ID or its full ARN. An ARN that names another cluster, account or Region
is not "missing": the whole call fails with ``InvalidParameterException`` ("Invalid identifier:
Identifier is for cluster X. Your cluster is Y", as AWS answers DescribeTasks and StopTask).
"""

from __future__ import annotations

from dataclasses import dataclass

from ecs_emulator.errors import InvalidParameterException

ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Names:
    """ARNs of one account and Region."""

    region: str
    account: str = ACCOUNT

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:{kind}/{name}"

    def task_id(self, ref: object, cluster_name: str) -> str:
        """The task ID of ``ref`` (an ID or an ARN) as seen from ``cluster_name``.

        Raises ``InvalidParameterException`` for an ARN of another cluster, account or Region,
        or for text that is neither an ID nor a task ARN.
        """
        text = str(ref or "")
        if not text.startswith("arn:"):
            if not text or "/" in text or ":" in text:
                raise InvalidParameterException("Invalid identifier: Unexpected number of separators")
            return text
        parts = text.split(":", 5)
        if len(parts) != 6 or parts[2] != "ecs" or not parts[5].startswith("task/"):
            raise InvalidParameterException("Invalid identifier: not a task ARN")
        region, account, resource = parts[3], parts[4], parts[5]
        if account != self.account:
            raise InvalidParameterException(
                f"Invalid identifier: Identifier is for account_id {account}. Your account_id is {self.account}"
            )
        if region != self.region:
            raise InvalidParameterException(
                f"Invalid identifier: Identifier is for region {region}. Your region is {self.region}"
            )
        path = resource.split("/")
        if len(path) == 3:  # task/<cluster>/<id>, the long ARN format
            if path[1] != cluster_name:
                raise InvalidParameterException(
                    f"Invalid identifier: Identifier is for cluster {path[1]}. Your cluster is {cluster_name}"
                )
            return path[2]
        if len(path) == 2 and path[1]:  # task/<id>, the old short format: the cluster is not in it
            return path[1]
        raise InvalidParameterException("Invalid identifier: Unexpected number of separators")
