"""An Apache Airflow 3 executor that runs every workload as one Amazon ECS task."""
