"""The documents a user follows stay true to the code."""

from pathlib import Path

from jupyter_containers import config

ROOT = Path(__file__).resolve().parents[2]


def test_config_reference_is_current():
    """docs/config.md is generated from the traits' help: regenerate it with
    python3 -c "from jupyter_containers import config; open('docs/config.md','w').write(config.document())"."""
    assert (ROOT / "docs" / "config.md").read_text() == config.document()


def test_every_option_is_documented_with_help():
    for cls in config.configurables():
        for name, trait in cls.class_traits(config=True).items():
            assert trait.help and len(trait.help.split()) >= 4, f"{cls.__name__}.{name} needs a help text"


def test_readme_begins_with_the_two_commands():
    lines = [l for l in (ROOT / "README.md").read_text().splitlines() if l.strip()]
    assert lines[1] == "```bash"
    assert lines[2].startswith("bash scripts/lab.sh")
    assert lines[3].startswith("bash scripts/test.sh")
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("exec bash scripts/test.sh")
