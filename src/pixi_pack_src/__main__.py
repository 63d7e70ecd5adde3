from pixi_pack_src.cli import main

main()
