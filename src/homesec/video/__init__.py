"""Reading camera clips: probing (`homesec.video.clip`) and the one frame sampler
(`homesec.video.sampler`) shared by the object filter, the VLM frame picker and the
snapshot maker."""
