"""Where the repository's own files are: recipes, config groups, chat templates."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RECIPES_DIR = REPO_ROOT / "recipes"
CONF_DIR = REPO_ROOT / "conf"
CHAT_TEMPLATES_DIR = REPO_ROOT / "pixelis_verl" / "chat_templates"
