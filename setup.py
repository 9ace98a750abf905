from setuptools import find_packages, setup

HOROVOD = "horovod==0.28.1"  # built from source by scripts/bootstrap.py, see README

setup(
    name="crpsgd_hvd",
    version="0.1.0",
    description="Communication-reduced parallel SGD (CR-PSGD) with growing batches on Horovod",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["crpsgd_hvd", "crpsgd_hvd.*"]),
    install_requires=["numpy>=1.26", "tqdm>=4.66"],
    extras_require={
        "torch": ["torch==2.13.0", HOROVOD],
        # Keras 2 from tf_keras: Horovod 0.28.1's Keras optimizer does not support Keras 3.
        "tf": ["tensorflow-cpu==2.21.0", "tf_keras==2.21.0", HOROVOD],
        "examples": ["matplotlib>=3.8", "scikit-learn>=1.4"],
        "dev": ["pytest>=8", "pytest-timeout>=2.3", "hypothesis>=6", "matplotlib>=3.8",
                "scikit-learn>=1.4"],
    },
    entry_points={"console_scripts": ["crpsgd-hvd=crpsgd_hvd.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
