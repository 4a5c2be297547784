from ewmbench.cli import app

app(prog_name="ewmbench")
