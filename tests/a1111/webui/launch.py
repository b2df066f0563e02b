"""``import launch`` as extension installers use it (re-exports launch_utils)."""

from modules.launch_utils import commit_hash, git_tag, is_installed, run_pip  # noqa: F401
