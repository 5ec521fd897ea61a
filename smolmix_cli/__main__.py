from smolmix_cli.cli.main import main

main()
