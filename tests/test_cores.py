"""wavephase.cores: the cores that jobs side by side share."""

import threading

import pytest

from wavephase.cores import CoreShare, usable_cores


def test_usable_cores_is_a_positive_count():
    assert usable_cores() >= 1


def test_jobs_that_end_give_their_cores_to_those_still_running():
    share = CoreShare(cores=4, jobs=3)
    assert share.threads() == 1
    with share.job() as threads:
        assert threads() == 1
    assert share.threads() == 2  # two jobs left
    with pytest.raises(RuntimeError), share.job():
        raise RuntimeError("a job that fails has ended too")
    assert share.threads() == 4


def test_many_threads_ending_at_once_count_each_job_once():
    share = CoreShare(cores=2, jobs=64)
    barrier = threading.Barrier(32)

    def run():
        barrier.wait()
        with share.job():
            pass

    workers = [threading.Thread(target=run) for _ in range(32)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert share._unfinished == 32 and share.threads() == 1


@pytest.mark.parametrize("kwargs, match", [({"cores": 0, "jobs": 1}, "cores"), ({"cores": 2, "jobs": 0}, "jobs")])
def test_bad_counts_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CoreShare(**kwargs)
