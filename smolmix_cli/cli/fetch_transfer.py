"""One URL's output as curl writes it, for both fetch shells.

The heads (-i, -I, -D, -v, --etag-save), the body (with the progress bar), the error
line and -w for one transfer, and the cookie jar after the last: the async engine
(fetch_engine.py) and the blocking attach shell (fetch_attached.py) both drive these,
so a command's output does not depend on which shell ran it.
"""

from __future__ import annotations

from smolmix_cli.apps.errors import AppError
from smolmix_cli.apps.http_transfer import ResponseHead, Transfer
from smolmix_cli.cli.env import CliEnv
from smolmix_cli.cli.errors import Report
from smolmix_cli.cli.fetch_output import (
    Progress,
    dump_header,
    progress_bar,
    show_response,
    write_out,
)
from smolmix_cli.cli.fetch_settings import Job, Settings
from smolmix_cli.errors_map import classify
from smolmix_cli.exit_codes import CliError, ExitCode


class TransferRun:
    """One URL from its first head to its -w line; `code` is its exit number."""

    def __init__(self, env: CliEnv, job: Job, settings: Settings, transfer: Transfer) -> None:
        self.env = env
        self.job = job
        self.settings = settings
        self.transfer = transfer
        self.progress: Progress | None = None
        self.code = 0

    def on_head(self, head: ResponseHead) -> None:
        """Every head (redirect hops too): -v, -i/-I, -D, --etag-save, the bar's start."""
        settings, env = self.settings, self.env
        if settings.verbose:
            show_response(env, head)
        raw = head.raw()
        if settings.include or settings.head_only:
            self.job.output.write(raw)
        if settings.dump_header is not None:
            dump_header(env, settings.dump_header, raw)
        if settings.etag_save is not None:  # curl leaves an empty file when there is none
            etag = head.header("etag")
            settings.etag_save.write_text(f"{etag}\n" if etag is not None else "")
        if settings.progress and self.progress is None:
            self.progress = progress_bar(env, head, self.job.output)

    def write(self, data: bytes) -> None:
        self.job.output.write(data)
        if self.progress is not None:
            self.progress.advance(len(data))

    def fail(self, exc: AppError) -> None:
        """This URL failed (curl goes on with the next one): its line, its number."""
        error = classify(exc)
        self.code = int(error.code)
        failed(self.transfer, error)
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        reporter(self.env, self.settings.errors_shown)(error)

    def close(self) -> None:
        """The bar gone and the output closed, whatever happened."""
        if self.progress is not None:
            self.progress.stop()
        try:
            self.job.output.close()
        except OSError as exc:
            error = CliError(f"Failure writing output: {exc}", ExitCode.WRITE_ERROR)
            reporter(self.env, self.settings.errors_shown)(error)

    def write_out(self) -> int:
        """-w for this transfer (failed ones too); returns its exit number."""
        if self.settings.write_out is not None:
            write_out(self.env, self.settings.write_out, self.transfer, self.settings.extra)
        return self.code


def save_cookies(env: CliEnv, settings: Settings) -> None:
    """-c: the jar after the last transfer, in curl's file format."""
    jar = settings.jobs[0].options.cookie_jar
    if settings.cookie_jar is None or jar is None:
        return
    if str(settings.cookie_jar) == "-":
        env.stdout.write(jar.dump().encode())
    else:
        try:
            jar.save(settings.cookie_jar)
        except AppError as exc:
            reporter(env, settings.errors_shown)(classify(exc))


def failed(transfer: Transfer, error: CliError) -> None:
    """The -w values of a transfer that failed: curl's exit number and message."""
    transfer.exitcode = int(error.code)
    transfer.errormsg = str(error)
    transfer.url_effective = transfer.url_effective or transfer.url


def reporter(env: CliEnv, shown: bool) -> Report:
    """curl's way: the code in the line, nothing at all with -s (unless -S)."""

    def report(error: CliError) -> None:
        if shown:
            env.echo(f"smolmix: ({int(error.code)}) {error}", err=True)

    return report
