"""The package's one compiled part; the rest of the metadata lives in setup.cfg.

``app/slates/_kernel.c`` is the simulation's one-pass kernel (app/slates/kernel.py says why
C). No fast-math and no FMA contraction: results must not depend on the compiler or the CPU.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "app.slates._kernel",
            ["app/slates/_kernel.c"],
            extra_compile_args=["-O3", "-ffp-contract=off", "-fno-fast-math"],
        )
    ]
)
