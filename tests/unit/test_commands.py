"""The shared verb parsers: docker's flags in, client keyword arguments out."""

import pytest

from jupyter_containers import commands
from jupyter_containers.commands.containers import create_options, environment_from_flags
from jupyter_containers.errors import UserError


def parse(*argv):
    return commands.parse(list(argv))


def test_run_flags_become_create_options(monkeypatch):
    monkeypatch.setenv("FROM_HOST", "yes")
    args = parse("run", "--rm", "-d", "--name", "db", "-e", "A=1", "-e", "FROM_HOST", "-e", "UNSET_ANYWHERE",
                 "-p", "3306:3306", "-v", "data:/var/lib/mysql", "-m", "512m", "--cpus", "1.5",
                 "--restart", "no", "-l", "lesson=2", "--network", "none", "-u", "app:staff",
                 "-w", "/srv", "-h", "dbhost", "--cap-add", "NET_ADMIN", "--read-only", "--init",
                 "mysql", "mariadbd", "--verbose")
    assert args.detach and args.image == "mysql" and args.command == ["mariadbd", "--verbose"]
    options = create_options(args)
    assert options["environment"] == ["A=1", "FROM_HOST=yes"]
    assert options["ports"] == ["3306:3306"]
    assert options["volumes"] == ["data:/var/lib/mysql"]
    assert options["mem_limit"] == "512m" and options["cpus"] == "1.5"
    assert options["labels"] == ["lesson=2"] and options["network"] == "none"
    assert options["user"] == "app:staff" and options["working_dir"] == "/srv"
    assert options["hostname"] == "dbhost" and options["cap_add"] == ["NET_ADMIN"]
    assert options["auto_remove"] and options["read_only"] and options["init"]


def test_options_after_the_image_belong_to_the_command():
    args = parse("run", "busybox", "ls", "-la", "--rm")
    assert args.command == ["ls", "-la", "--rm"]
    assert not args.rm


def test_health_flags():
    options = create_options(parse("run", "--health-cmd", "mysqladmin ping", "--health-interval", "2s",
                                   "--health-retries", "5", "mysql"))
    assert options["healthcheck"]["test"] == ["CMD-SHELL", "mysqladmin ping"]
    assert options["healthcheck"]["interval"] == "2s" and options["healthcheck"]["retries"] == 5
    assert create_options(parse("run", "--no-healthcheck", "mysql"))["healthcheck"] == {"test": ["NONE"]}


def test_env_file(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nA=1\n\nB=two words\n")
    assert environment_from_flags(["C=3"], [str(env_file)]) == ["A=1", "B=two words", "C=3"]


@pytest.mark.parametrize("argv, message", [
    (["run"], "the following arguments are required: IMAGE"),
    (["run", "--bogus", "busybox"], "unknown flag or argument: --bogus"),
    (["stop"], "the following arguments are required: CONTAINER"),
    (["network"], "a command is required"),
    (["run", "--pull", "sometimes", "busybox"], "invalid choice"),
])
def test_bad_flags_are_one_line_errors(argv, message):
    with pytest.raises(commands.ArgumentError) as info:
        parse(*argv)
    assert message in str(info.value)
    assert "--help" in str(info.value)
    assert "\n" not in str(info.value).strip()


@pytest.mark.parametrize("argv, shown", [
    (["frobnicate"], "'frobnicate' is not a jupyter-containers command"),
    (["network", "frobnicate"], "'network frobnicate' is not a jupyter-containers command"),
])
def test_an_unknown_command_is_a_plain_error_as_in_docker(argv, shown):
    with pytest.raises(UserError) as info:
        parse(*argv)
    assert shown in str(info.value) and info.value.exit_code == 1


@pytest.mark.parametrize("argv, verb", [
    (["ps"], "ps"), (["container", "ls"], "ps"), (["images"], "images"), (["image", "ls"], "images"),
    (["rmi", "x"], "rmi"), (["image", "rm", "x"], "rmi"), (["container", "run", "x"], "run"),
    (["volume", "ls"], "ls"), (["network", "create", "n"], "create"), (["container", "prune"], "container_prune"),
])
def test_docker_aliases(argv, verb):
    assert parse(*argv)._run.__name__ == verb


def test_help_is_not_an_error(capsys):
    with pytest.raises(commands.HelpShown):
        parse("run", "--help")
    assert "--memory" in capsys.readouterr().out


def test_a_command_builds_only_its_own_parser_and_parses_as_the_full_one():
    full = commands.build_parser("jc")
    for argv in (["ps", "-a", "-q"], ["exec", "-u", "app", "box", "id"], ["container", "ls", "-a"],
                 ["image", "rm", "-f", "busybox"], ["volume", "create", "data"]):
        own = commands.build_parser("jc", argv[0])
        assert list(own._subparsers._group_actions[0].choices) == [argv[0]]
        mine, everything = vars(own.parse_args(argv)), vars(full.parse_args(argv))
        mine.pop("_group", None), everything.pop("_group", None)
        assert mine == everything
    # every command still has its --help, and the top level lists them all
    for name in list(commands.VERBS) + list(commands.GROUPS):
        with pytest.raises(commands.HelpShown):
            parse(name, "--help")
    assert set(full._subparsers._group_actions[0].choices) == set(commands.VERBS) | set(commands.GROUPS)
