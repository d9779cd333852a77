"""The demo world's generator (preparation/make_demo_world.py is its command line).

    draw        drawing primitives: the Canvas, noise, masks of shapes, palettes
    street      street geometry and the look of each dataset's scenes
    objects     street objects of the training classes and the OoD obstacles
    scene       whole street scenes: sky, roadside, ground, objects, shadows, camera
    coco        COCO-like images of vivid geometric objects and their annotations
    writers     one writer per dataset, in the real file layout; make_demo_world
"""
