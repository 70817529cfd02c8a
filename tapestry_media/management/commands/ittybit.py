"""``manage.py ittybit``: the seed's CLI (``ittybit video -i … --width 1280 --format mp4``).

    manage.py ittybit video|image|audio -i <url|path> [--width …] [--metadata k=v …]
                      [--local|--cloud] [--wait|--async] [--timeout S] [--json]
    manage.py ittybit task <kind> -i <url|path> --options '<json>' [same flags]
    manage.py ittybit tasks [ID] [--status S] [--kind K] [--metadata k=v …] [--limit N] [--json]
    manage.py ittybit webhooks create [--url https://…] [--name N] [--topic T …] | list | delete ID

Argument parsing and output only; the work is in :mod:`tapestry_media.cli`.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import cli, cli_webhooks
from ...status import Status


class Command(BaseCommand):
    help = (
        "Run a media task like Ittybit's CLI (video, image, audio, or any kind with 'task'), "
        "locally with FFmpeg or on the Ittybit API; or list the tasks stored here ('tasks')."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(
            dest="subcommand", required=True, metavar="COMMAND", parser_class=SubcommandParser
        )
        for kind in cli.MEDIA_KINDS:
            article = "an" if kind[0] in "aeiou" else "a"
            sub = commands.add_parser(
                kind,
                help=f"Create {article} {kind} task.",
                description=f"Create {article} {kind} task. Only the option flags given are sent.",
            )
            _input_argument(sub)
            for flag in cli.flags_for(kind):
                sub.add_argument(
                    f"--{flag.name}", type=flag.type, choices=flag.choices, help=flag.help
                )
            self._task_arguments(sub)

        task = commands.add_parser(
            "task",
            help="Create a task of any kind (speech, subtitles, …) with options as JSON.",
            description="Create a task of any kind; the options pass through unchanged.",
        )
        task.add_argument("kind", type=cli.task_kind, help="the task kind, e.g. subtitles")
        _input_argument(task)
        task.add_argument(
            "--options",
            type=cli.json_object,
            default={},
            metavar="JSON",
            help='the options as a JSON object, e.g. \'{"language": "en"}\'',
        )
        self._task_arguments(task)

        listing = commands.add_parser(
            "tasks",
            help="List the tasks stored here, or show one.",
            description="List tasks, newest first, or show one by remote id, uuid or pk.",
        )
        listing.add_argument("id", nargs="?", metavar="ID", help="remote id, uuid or pk")
        listing.add_argument("--status", choices=Status.values)
        listing.add_argument("--kind")
        listing.add_argument(
            "--metadata", action="append", default=[], metavar="KEY=VALUE", help="exact match"
        )
        listing.add_argument("--limit", type=cli.positive_int, default=20, metavar="N")
        listing.add_argument("--json", action="store_true", help="print task objects as JSON")
        _webhooks_arguments(commands)
        for sub in commands.choices.values():
            _accept_django_flags(sub)

    def _task_arguments(self, sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--metadata",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="attach metadata (repeat the flag for more keys)",
        )
        where = sub.add_mutually_exclusive_group()
        where.add_argument(
            "--local", action="store_true", help="run with FFmpeg on this machine (no API key)"
        )
        where.add_argument("--cloud", action="store_true", help="run on the Ittybit API")
        when = sub.add_mutually_exclusive_group()
        when.add_argument(
            "--wait",
            action="store_true",
            help="run the task to the end here, no worker needed; exit 1 if it fails",
        )
        when.add_argument(
            "--async",
            dest="async_",
            action="store_true",
            help="submit and return at once (the default)",
        )
        sub.add_argument(
            "--timeout",
            type=cli.timeout,
            default=cli.DEFAULT_TIMEOUT,
            metavar="SECONDS",
            help=f"how long --wait waits (default {cli.DEFAULT_TIMEOUT:g})",
        )
        sub.add_argument("--json", action="store_true", help="print the task object as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "tasks":
            self.list_tasks(options)
        elif options["subcommand"] == "webhooks":
            self.webhooks(options)
        else:
            self.run_task(options)

    def webhooks(self, options: dict[str, Any]) -> None:
        action = options["action"]
        if action == "create":
            endpoint = cli_webhooks.create(
                url=options["url"], topics=options["topic"], name=options["name"]
            )
            # stdout only: the secret is never shown again and must not reach a log.
            self.stdout.write(cli_webhooks.secret_notice(endpoint))
        elif action == "list":
            self.stdout.write(cli_webhooks.table(cli_webhooks.endpoints()))
        else:
            cli_webhooks.delete(options["endpoint_id"])
            self.stdout.write(f"deleted webhook endpoint {options['endpoint_id']}")

    def run_task(self, options: dict[str, Any]) -> None:
        kind = options["kind"] if options["subcommand"] == "task" else options["subcommand"]
        flags = options["options"] if options["subcommand"] == "task" else options
        plan = cli.plan(
            kind=kind,
            input=options["input"],
            options=flags if options["subcommand"] == "task" else cli.options_from(flags, kind),
            metadata=options["metadata"],
            local=options["local"],
            cloud=options["cloud"],
        )
        task = cli.submit_now(cli.create(plan))
        if options["wait"]:
            line = cli.ProgressLine(self.stderr)
            try:
                task = cli.wait(task, timeout=options["timeout"], progress=line)
            finally:
                line.close()
        self.show(task, as_json=options["json"])
        hint = None if options["wait"] else cli.hint(task)
        if hint and options["verbosity"] > 0:
            self.stderr.write(hint, style_func=str)
        problem = cli.problem(task, waited=options["wait"], timeout=options["timeout"])
        if problem:
            raise CommandError(problem)

    def list_tasks(self, options: dict[str, Any]) -> None:
        rows = cli.select(
            status=options["status"], kind=options["kind"], metadata=options["metadata"]
        )
        if options["id"]:
            self.show(cli.find(options["id"], rows), as_json=options["json"])
            return
        tasks = list(rows[: options["limit"]])
        if options["json"]:
            self.stdout.write(cli.dumps([cli.as_json(task) for task in tasks]))
        else:
            self.stdout.write(cli.table(tasks))

    def show(self, task: Any, *, as_json: bool) -> None:
        self.stdout.write(cli.dumps(cli.as_json(task)) if as_json else cli.summary(task))


def _webhooks_arguments(commands: Any) -> None:
    hooks = commands.add_parser(
        "webhooks",
        help="Register this site's webhook endpoint with Ittybit, list or delete endpoints.",
        description="Manage the account's webhook endpoints (POST /webhooks/endpoints).",
    )
    actions = hooks.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="Register an HTTPS endpoint; prints its whsec_ secret once.",
        description="Register an HTTPS endpoint and print its whsec_ secret (shown once).",
    )
    create.add_argument(
        "--url", metavar="HTTPS_URL", help="this site's webhook URL (default: WEBHOOK_URL)"
    )
    create.add_argument("--name", default="", help="a label for the endpoint")
    create.add_argument(
        "--topic",
        action="append",
        choices=cli_webhooks.TOPICS,
        metavar="TOPIC",
        help=f"subscribe to TOPIC (repeat; default: {', '.join(cli_webhooks.DEFAULT_TOPICS)})",
    )
    actions.add_parser("list", help="List the account's webhook endpoints.")
    delete = actions.add_parser("delete", help="Delete a webhook endpoint.")
    delete.add_argument("endpoint_id", metavar="ID", help="the endpoint's id (we_…)")
    for sub in actions.choices.values():
        _accept_django_flags(sub)


def _input_argument(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "-i", "--input", required=True, metavar="URL|PATH", help="a URL or a local file"
    )


class SubcommandParser(CommandParser):
    """A subcommand's parser refuses flags it does not know itself, so the usage printed is
    the subcommand's (``ittybit audio --width 5`` lists the audio flags), not the top level's."""

    def parse_known_args(  # type: ignore[override]
        self, args: Any = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def _accept_django_flags(sub: argparse.ArgumentParser) -> None:
    """Django's own flags after the subcommand too (``ittybit video … --settings x``); the
    values land where the top-level parser puts them."""
    hidden: dict[str, Any] = {"default": argparse.SUPPRESS, "help": argparse.SUPPRESS}
    sub.add_argument("-v", "--verbosity", type=int, choices=[0, 1, 2, 3], **hidden)
    sub.add_argument("--settings", **hidden)
    sub.add_argument("--pythonpath", **hidden)
    for name in ("--traceback", "--no-color", "--force-color", "--skip-checks"):
        sub.add_argument(name, action="store_true", **hidden)
