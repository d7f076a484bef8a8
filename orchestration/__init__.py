"""The top layer: what the DAGs call, how this deployment runs them, and the ``recpipe`` command line.

``tasks`` (one function per DAG task), ``deploy`` (deployment settings read when a DAG is parsed: the Spark
mode, where GPU steps run, the raw-data wait, backfill priority) and ``cli``. It is the only package that
knows every other one; ``dags/`` import nothing of the project but this package.
"""
