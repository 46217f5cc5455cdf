"""Every chapter's experiments: importing this module registers them all
(:mod:`vidattn.core.registry`). The CLI, the behaviour probes and the tests import it;
a chapter imports only its own experiment modules."""
import vidattn.papers.cidc.experiment  # noqa: F401
import vidattn.papers.cidc.real  # noqa: F401
import vidattn.papers.data_suites.experiment  # noqa: F401
import vidattn.papers.direcformer.experiment  # noqa: F401
import vidattn.papers.direcformer.real  # noqa: F401
import vidattn.papers.head_to_head.experiment  # noqa: F401
import vidattn.papers.pyramid.experiment  # noqa: F401
import vidattn.papers.pyramid.real  # noqa: F401
import vidattn.papers.sifa.experiment  # noqa: F401
import vidattn.papers.sifa.real  # noqa: F401
import vidattn.papers.spatial.experiment  # noqa: F401
import vidattn.papers.spatial.real  # noqa: F401
