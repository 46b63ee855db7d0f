"""Regenerates the protobuf and gRPC stubs in ``generated/`` from ``maggy.proto``.

Run from anywhere: ``python maggy/core/rpc/codegen.py`` (needs ``grpcio-tools``). The
generated files are checked in and never edited by hand.
"""

import pathlib
import re

from grpc_tools import protoc

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "generated"


def main() -> None:
    """Runs protoc and rewrites the generated absolute import into a package-relative one."""
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{HERE}",
            f"--python_out={OUT}",
            f"--grpc_python_out={OUT}",
            str(HERE / "maggy.proto"),
        ]
    )
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    # protoc writes "import maggy_pb2", which only works with generated/ on sys.path.
    grpc_file = OUT / "maggy_pb2_grpc.py"
    text = grpc_file.read_text()
    grpc_file.write_text(re.sub(r"^import maggy_pb2 as", "from . import maggy_pb2 as", text, flags=re.M))


if __name__ == "__main__":
    main()
