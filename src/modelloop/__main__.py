from modelloop.cli.main import main

main()
