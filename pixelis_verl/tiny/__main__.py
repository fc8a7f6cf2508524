"""`python -m pixelis_verl.tiny --out DIR`: build the tiny models (see `pixelis_verl.tiny.build`)."""

from pixelis_verl.tiny.build import main

main()
