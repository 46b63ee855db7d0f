"""What maggy's embedded Spark session leaves behind on the machine."""

import os
import subprocess
import sys

PROBE = """
import os
from maggy.core.spark import get_session
spark, _ = get_session(1, 1)
spark.sparkContext.parallelize(range(1), 1).count()
folder = spark.conf.get("spark.python.unix.domain.socket.dir", "")
print(folder)
print(sorted(os.listdir(folder)) if folder else [])
"""


def test_the_sessions_unix_sockets_are_removed_when_python_exits():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=300)
    folder, sockets = out.stdout.strip().splitlines()[-2:]
    # The workers talked to Spark over Unix sockets in a folder of the session's own...
    assert folder and ".sock" in sockets, out.stdout
    # ...which Spark would leave behind in the temporary directory; maggy removes it.
    assert not os.path.exists(folder)


def test_the_sessions_jvm_compiles_with_c1_only(spark):
    # C2 compiling Spark's code took CPU from the trials for many lagom() calls; the option
    # must reach the JVM that runs the tasks, not just sit in the session's configuration.
    from maggy.core.spark import JIT_OPTION

    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    assert JIT_OPTION in list(runtime.getInputArguments())
