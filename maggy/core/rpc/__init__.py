"""The gRPC channel between the driver and its executors.

``maggy.proto`` defines the messages; ``generated/`` holds the stubs made from it by
``codegen.py``; :mod:`.server` runs the driver's side and :mod:`.client` the executor's.
"""

from maggy.core.rpc.client import DriverClient
from maggy.core.rpc.server import TOKEN_METADATA_KEY, MAX_MESSAGE_BYTES, serve

__all__ = ["DriverClient", "serve", "TOKEN_METADATA_KEY", "MAX_MESSAGE_BYTES"]
