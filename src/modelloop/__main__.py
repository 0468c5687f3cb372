from modelloop.cli.main import console

console()
