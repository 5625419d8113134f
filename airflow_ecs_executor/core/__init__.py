"""Pure decisions: no boto3, no airflow, no clock, no threads. Plain values in, decisions out."""
