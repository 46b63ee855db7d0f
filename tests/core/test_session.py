"""Reading a session without a SparkContext: driver address, slot count, maggy's own settings."""

import pytest

import maggy
from maggy.core.session import connect_slots, decide_driver_hosts, is_connect


@pytest.mark.parametrize(
    "master, driver_host, connect, expected",
    [
        # A local master keeps the server on the loopback, classic or Connect.
        ("local[2]", "10.0.0.5", False, ("127.0.0.1", "127.0.0.1")),
        ("local[2]", "10.0.0.5", True, ("127.0.0.1", "127.0.0.1")),
        # A classic cluster driver is this process: executors dial spark.driver.host.
        ("yarn", "10.0.0.5", False, ("0.0.0.0", "10.0.0.5")),
        # Through Connect the server runs in the client: its own address towards the driver.
        ("spark://m:7077", "10.0.0.5", True, ("0.0.0.0", "10.0.0.9")),
        # A loopback spark.driver.host keeps the server on the loopback.
        ("spark://127.0.0.1:7077", "127.0.0.1", True, ("127.0.0.1", "127.0.0.1")),
    ],
)
def test_driver_hosts(master, driver_host, connect, expected):
    route = {"10.0.0.5": "10.0.0.9"}.get
    assert decide_driver_hosts(master, driver_host, connect=connect, route_to=route) == expected


@pytest.mark.parametrize(
    "conf, expected",
    [
        ({"spark.master": "local[2]"}, 2),
        ({"spark.master": "local[3,16]"}, 3),
        ({"spark.master": "local[*]"}, 7),
        ({"spark.master": "local"}, 1),
        ({"spark.master": "yarn", "spark.default.parallelism": "12"}, 12),
        ({"spark.master": "k8s://x", "spark.executor.instances": "3", "spark.executor.cores": "4", "spark.task.cpus": "2"}, 6),
        ({"spark.master": "spark://m:7077", "spark.cores.max": "5"}, 5),
        # Nothing to go by (Databricks serverless): unknown, and maggy says so.
        ({"spark.master": "spark://m:7077"}, None),
        ({"spark.master": None}, None),
    ],
)
def test_connect_slots_from_configuration(conf, expected):
    assert connect_slots(conf, cpu_count=7) == expected


def test_spark_conf_is_what_the_embedded_session_uses(spark):
    conf = maggy.spark_conf()
    # Rule: the embedded session has every worker setting spark_conf() hands to users.
    for key, value in conf.items():
        if not key.startswith("spark.pyspark."):
            assert spark.conf.get(key) == value, key
    assert conf["spark.python.daemon.module"] == "maggy.core.worker_daemon"
    # A new dict each call: a caller's edits do not leak into the next.
    conf["spark.python.worker.reuse"] = "false"
    assert maggy.spark_conf()["spark.python.worker.reuse"] == "true"
    assert not is_connect(spark)
