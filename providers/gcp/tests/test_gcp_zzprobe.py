import time
from runvoy_core.models import ExecutionRequest
from runvoy_core.ports import TaskSpec

def test_probe(provider, fake_logging):
    spec = TaskSpec.from_request("e1", ExecutionRequest(command="seq 1 120"), env={}, request_id=None)
    ref = provider.compute.start(spec, "e1")
    while not provider.compute.describe(ref).ended:
        time.sleep(0.05)
    orig = fake_logging.server.handle
    def timed(*a):
        t = time.time(); r = orig(*a); print("  server", round(time.time()-t,3), "at", round(t % 100, 3)); return r
    fake_logging.server.handle = timed
    cur = None
    for i in range(20):
        t = time.time(); n0 = len(fake_logging.server.calls)
        import faulthandler, sys
        faulthandler.dump_traceback_later(2, file=sys.stderr)
        pg = provider.logs.read(ref, cur, 7); cur = pg.cursor
        faulthandler.cancel_dump_traceback_later()
        print(i, round(t % 100, 3), round(time.time() - t, 3), [(c.status, c.body.get("pageSize")) for c in fake_logging.server.calls[n0:]])
