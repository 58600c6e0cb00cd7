"""Command-line pieces the models' commands share: one-line errors, exit status 2."""

from __future__ import annotations

import argparse
from typing import NoReturn


class UsageError(ValueError):
    """A bad argument: reported as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE`` and exit 2 (no usage block)."""
        self.exit(2, f"{self.prog}: error: {message}\n")


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default, except an absent (None) one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.required or action.default is False:
            return action.help
        return super()._get_help_string(action)
