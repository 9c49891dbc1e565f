"""`pacsbridge demo`: everything on embedded defaults, on one machine.

Flow: ``pacs.DemoPacs`` (pynetdicom's own Q/R application on 127.0.0.1, storing to a folder) →
``samples.write_demo_media`` (a CD with DICOMDIR and a USB stick with loose files) →
``launcher.run`` (settings, runtime, a RIS launch for the sample patient, the printed link, the
web server with its worker).
"""
