from smolmix_cli.cli.quick_start import main

main()
