"""Vision methods: backbones, initialisation, box losses."""
