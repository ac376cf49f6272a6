"""Images: parse a reference (``reference``), check it against the ``[images]`` policy (``policy``) and resolve it
against its registry to a pinned digest (``registry``). Standard library plus pydantic only; nothing here is
imported unless a run names an image, so ``runvoy --help`` and image-less runs never pay for it."""
