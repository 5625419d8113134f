"""A local Amazon ECS emulator that runs tasks for real.

It speaks the ECS and CloudWatch Logs JSON APIs over HTTP on 127.0.0.1, so boto3 talks to it
unchanged through ``endpoint_url``. Each ECS task's containers run as local processes (or are
simulated, or run in Docker where an engine answers). The product package never imports this one.
"""

from ecs_emulator.emulator import Emulator
from ecs_emulator.profile import Profile, load_profile

__all__ = ["Emulator", "Profile", "load_profile"]
