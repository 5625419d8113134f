"""What the check needs to know of the task subnets: their VPCs, the security groups' VPCs, the way out.

Read with EC2's Describe* calls (read-only) and translated here into small values; ``check.py`` judges them.
A subnet's route table is the one explicitly associated with it, else its VPC's main route table
("Configure route tables", https://docs.aws.amazon.com/vpc/latest/userguide/VPC_Route_Tables.html).
An awsvpc task without a public IP reaches ECR, S3 (image layers), CloudWatch Logs and the API server only
through a NAT device or VPC endpoints; with a public IP, through an internet gateway ("Amazon ECS task
networking options for Fargate", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-networking.html;
"Amazon ECR interface VPC endpoints", https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from botocore.exceptions import ClientError

from airflow_ecs_executor.aws.session import error_code

Egress = Literal["internet-gateway", "nat", "none"]
_DEFAULT_ROUTES: Final = ("0.0.0.0/0", "::/0")
# Endpoints a task without internet access needs to pull an ECR image and ship its logs.
ECR_ENDPOINTS: Final = ("ecr.api", "ecr.dkr", "s3", "logs")


@dataclass(frozen=True)
class SubnetView:
    """One subnet: its VPC, its route table and where its default route leads."""

    subnet_id: str
    vpc_id: str
    route_table_id: str | None
    egress: Egress


@dataclass(frozen=True)
class NetworkView:
    """The task subnets and security groups as EC2 describes them."""

    subnets: tuple[SubnetView, ...]
    missing_subnets: tuple[str, ...]
    group_vpcs: Mapping[str, str]  # security group ID -> VPC ID
    missing_groups: tuple[str, ...]
    endpoints: Mapping[str, frozenset[str]]  # VPC ID -> short service names with an endpoint (e.g. "ecr.dkr")


def describe_network(ec2: Any, subnets: Sequence[str], security_groups: Sequence[str], region: str) -> NetworkView:
    """Describe the subnets, security groups, route tables and VPC endpoints; AWS errors propagate."""
    found = {s["SubnetId"]: s["VpcId"] for s in _subnets(ec2, subnets)}
    views = tuple(
        SubnetView(subnet, vpc, *_route_of(ec2, subnet, vpc)) for subnet, vpc in found.items() if subnet in subnets
    )
    group_vpcs: dict[str, str] = {}
    for group_id in security_groups:
        try:
            groups = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
        except ClientError as exc:
            if error_code(exc).startswith("InvalidGroup"):
                continue
            raise
        group_vpcs.update({g["GroupId"]: g.get("VpcId", "") for g in groups})
    endpoints: dict[str, frozenset[str]] = {}
    prefix = f"com.amazonaws.{region}."
    for vpc in sorted(set(found.values())):
        described = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
        endpoints[vpc] = frozenset(
            str(e.get("ServiceName", "")).removeprefix(prefix)
            for e in described
            if e.get("State", "available").lower() == "available"
        )
    return NetworkView(
        subnets=views,
        missing_subnets=tuple(s for s in subnets if s not in found),
        group_vpcs=group_vpcs,
        missing_groups=tuple(g for g in security_groups if g not in group_vpcs),
        endpoints=endpoints,
    )


def _subnets(ec2: Any, subnets: Sequence[str]) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    for subnet in subnets:  # one by one: a single unknown ID fails the whole call (InvalidSubnetID.NotFound)
        try:
            out += ec2.describe_subnets(SubnetIds=[subnet])["Subnets"]
        except ClientError as exc:
            if not error_code(exc).startswith("InvalidSubnetID"):
                raise
    return out


def _route_of(ec2: Any, subnet: str, vpc: str) -> tuple[str | None, Egress]:
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["RouteTables"]
    if not tables:
        tables = [
            t
            for t in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
            if any(a.get("Main") for a in t.get("Associations") or [])
        ]
    if not tables:
        return None, "none"
    table = tables[0]
    return table.get("RouteTableId"), _egress(table.get("Routes") or [])


def _egress(routes: Sequence[Mapping[str, Any]]) -> Egress:
    default = [
        r
        for r in routes
        if (r.get("DestinationCidrBlock") in _DEFAULT_ROUTES or r.get("DestinationIpv6CidrBlock") in _DEFAULT_ROUTES)
        and r.get("State", "active") == "active"
    ]
    if any(str(r.get("GatewayId", "")).startswith("igw-") for r in default):
        return "internet-gateway"
    # A NAT gateway, a NAT instance (an instance or its network interface) or a transit gateway that leads out.
    through = ("NatGatewayId", "InstanceId", "NetworkInterfaceId", "TransitGatewayId", "EgressOnlyInternetGatewayId")
    if any(r.get(key) for r in default for key in through):
        return "nat"
    return "none"
