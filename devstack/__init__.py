"""The whole system on one machine: the ECS emulator and a real Airflow configured with EcsExecutor.

Used by ``make demo`` and by the end-to-end tests. It imports neither the product nor the emulator
package: both run as their own processes, exactly as they would against AWS (only the endpoint
URL differs).
"""
