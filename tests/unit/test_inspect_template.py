"""``inspect -f``: docker's Go templates as docker users write them."""

import pytest

from jupyter_containers.commands.format import render_template
from jupyter_containers.errors import UserError

ITEM = {
    "Id": "abc",
    "State": {"Status": "running", "Running": True, "Health": None, "Pid": 42},
    "Config": {"Cmd": ["sh", "-c"], "Labels": {"b": "2", "a": "1"}},
    "IPAM": {"Config": [{"Subnet": "10.1.2.0/24"}]},
    "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "10.0.0.2"}, "app": {"IPAddress": "10.0.1.2"}},
                        "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}},
}


@pytest.mark.parametrize("template, expected", [
    ("{{.Id}}", "abc"),
    ("{{ .State.Status }} pid={{.State.Pid}} up={{.State.Running}}", "running pid=42 up=true"),
    ("{{.State.Health}}", "<nil>"),
    ("{{.Config.Cmd}}", "[sh -c]"),
    ("{{.Config.Labels}}", "map[a:1 b:2]"),
    ("{{json .Config.Cmd}}", '["sh","-c"]'),
    ('{{index .Config.Labels "a"}}', "1"),
    ('{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}', "8080"),
    ("{{(index .IPAM.Config 0).Subnet}}", "10.1.2.0/24"),
    ("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "10.0.1.2 10.0.0.2 "),  # sorted by key, as Go
    ("{{range .Config.Cmd}}<{{.}}>{{end}}", "<sh><-c>"),
    ('{{join .Config.Cmd ","}} {{len .Config.Cmd}} {{upper .State.Status}}', "sh,-c 2 RUNNING"),
    ("{State[Status]}", "running"),
    ("Id", "abc"),
])
def test_templates(template, expected):
    assert render_template(template, ITEM) == expected


@pytest.mark.parametrize("template, message", [
    ("{{.Nope}}", "no field Nope"),
    ("{{.State.Nope.Deeper}}", "no field Nope"),
    ('{{index .Config.Labels "zzz"}}', "no entry 'zzz'"),
    ("{{range .Config.Cmd}}x", "without {{end}}"),
    ("x{{end}}", "without {{range}}"),
    ("{{printf \"%s\" .Id}}", "unsupported template function 'printf'"),
])
def test_bad_templates_are_one_line_errors(template, message):
    with pytest.raises(UserError) as caught:
        render_template(template, ITEM)
    assert message in str(caught.value) and "\n" not in str(caught.value)
