"""Generated protobuf and gRPC stubs (see ../codegen.py). DO NOT EDIT."""
