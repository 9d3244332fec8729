from .explore_images import busybox_image

def test_run(shell, registry):
    image = busybox_image(registry)
    shell.magics.widgets = False
    cell = shell.run(f"%container run --network none {image} sh -c 'echo hello; sleep 1; echo err >&2; echo two'")
    print(cell.stdout.writes, cell.stderr.writes, cell.error, cell.value)
    cell = shell.run(f"%%container run --network none {image}\necho \"quotes 'x' $0\"\nexit 3")
    print(cell.stdout.writes, cell.stderr.writes, cell.error, cell.value)
    cell = shell.run(f"c = %container run -d --name web --network none {image} sh -c 'while true; do echo tick; sleep 0.2; done'")
    print(cell.stdout.writes, cell.stderr.writes, cell.error, cell.value)
    cell = shell.run(f"%%container exec web\necho \"in exec $0\"")
    print(cell.stdout.writes, cell.stderr.writes, cell.error, cell.value)
    cell = shell.run(f"%container ps")
    print(cell.stdout.text, cell.stderr.writes, cell.error, cell.value)
    cell = shell.run(f"%container logs --tail 3 web")
    print(cell.stdout.text, cell.stderr.writes, cell.error, cell.value)
