"""The optional C checksum extension; everything else is declared in pyproject.toml.

`optional=True`: where no compiler is available the build skips it and
smolmix_cli/netstack/checksum.py uses its pure-Python form.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "smolmix_cli.netstack._checksum",
            ["smolmix_cli/netstack/_checksum.c"],
            optional=True,
        )
    ]
)
