"""maggy: ablation studies for PyTorch on Apache Spark."""

import os

from setuptools import find_packages, setup

here = os.path.abspath(os.path.dirname(__file__))
with open(os.path.join(here, "README.md"), encoding="utf-8") as f:
    long_description = f.read()

setup(
    name="maggy",
    version="0.1.0",
    description="Ablation studies for PyTorch models, run in parallel on Apache Spark",
    long_description=long_description,
    long_description_content_type="text/markdown",
    packages=find_packages(include=["maggy", "maggy.*"]),
    package_data={"maggy.core": ["log4j2.properties"], "maggy.core.rpc": ["maggy.proto"]},
    python_requires=">=3.10",
    install_requires=[
        "pyspark>=3.5",
        # Any recent torch: GPU users keep the build they have.
        "torch>=2.0",
        "pandas>=1.5",
        "numpy>=1.23",
        # Paired t-tests, Holm, signed-rank: the verdicts of maggy.statistics.
        "scipy>=1.10",
        # The checked-in stubs were generated with grpcio-tools 1.85 / protobuf 7.35.
        "grpcio>=1.85.1",
        "protobuf>=7.35.1",
        "pyarrow>=12",
        "tqdm>=4.60",
        "matplotlib>=3.6",
        "tensorboard>=2.12",
        # TLS for the driver's channel: a certificate per experiment (maggy/core/rpc/tls.py).
        "cryptography>=41",
    ],
    extras_require={
        "dev": [
            "pytest>=7",
            "pytest-timeout>=2",
            "nbclient>=0.7",
            "nbformat>=5",
            "ipykernel>=6",
            "grpcio-tools>=1.85.1",
            # Spark Connect's client (the Connect tests start a local Connect server).
            "grpcio-status>=1.85.1",
            "googleapis-common-protos>=1.56",
            "zstandard>=0.23",
        ],
        # lagom(..., spark=<a Spark Connect session>): pyspark's Connect client needs these.
        "connect": ["grpcio-status>=1.85.1", "googleapis-common-protos>=1.56", "zstandard>=0.23"],
    },
    entry_points={"console_scripts": ["maggy=maggy.__main__:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
