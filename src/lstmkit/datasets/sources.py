"""The pinned sources of the data cache: one package of one registry each.

A source names the package, the exact version and the SHA-256 of the file the
registry's own client downloads (the .deb of `apt-get download`, the .tgz of
`npm pack`, the wheel or sdist of `pip download`). A download whose SHA-256
differs is refused, so a data set is always the same bytes.

``files`` names the paths worth knowing inside the unpacked root (relative
to it). ``system`` lists the files whose presence under / means the package
is already installed on this machine: the cache then uses that copy and
downloads nothing (the paths of a Debian package are the same in the cache's
unpacked root and under /).
"""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    name: str                # the data set's name in the cache (the folder's name)
    registry: str            # 'debian', 'npm' or 'pypi'
    package: str             # the package's name in that registry
    version: str             # pinned exact version
    sha256: str              # of the downloaded package file
    size: int                # bytes of the downloaded package file
    licence: str
    holds: str               # what is in it, in a few words
    files: dict = field(default_factory=dict)    # short name -> path inside the unpacked root
    system: tuple = ()       # paths under / that mean "installed system copy present"

    @property
    def spec(self):
        """The client's spelling of package and version."""
        return {"debian": f"{self.package}={self.version}", "npm": f"{self.package}@{self.version}",
                "pypi": f"{self.package}=={self.version}"}[self.registry]

    @property
    def command(self):
        """The command that downloads the package file by hand."""
        return {"debian": f"apt-get download {self.spec}", "npm": f"npm pack {self.spec}",
                "pypi": f"pip download --no-deps {self.spec}"}[self.registry]


def _deb(name, version, sha256, size, licence, holds, files, system=True):
    return Source(name, "debian", name, version, sha256, size, licence, holds, dict(files),
                  tuple(files.values()) if system else ())


SOURCES = {s.name: s for s in [
    _deb("fortunes-zh", "2.98", "211c5ddee59d0ae74ce01cbfd02f7c8714740bae1835d5661eb2254edd739105", 546072,
         "GPL-3+ (packaging; the poems are public domain)",
         "313 Tang poems (tang300), 100 Song lyrics (song100), Chinese sayings (chinese); fortune format",
         {"tang300": "usr/share/games/fortunes/tang300", "song100": "usr/share/games/fortunes/song100",
          "chinese": "usr/share/games/fortunes/chinese"}),
    _deb("trans-de-en", "1.9-6", "45f6b4cf1c434776fba6811d7bc522efabb5425c43ba8afd0e289bf9e2e53df4", 6276816,
         "GPL-2+", "the Ding German-English dictionary, 'German | ... :: English | ...' lines",
         {"de-en": "usr/share/trans/de-en"}),
    Source("chinese-poetry", "npm", "chinese-poetry", "2.0.1",
           "25b549e46919c3a0569db6b68ddc96956b04a484ea4518ad2bbd4f137e307e86", 85464664, "MIT",
           "57,607 Tang poems (quantangshi) and Song poems, ci, Shijing...; JSON, traditional script",
           {"quantangshi": "package/dist/quantangshi"}),
    _deb("tuxpaint-stamps-default", "2022.06.04-1",
         "6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34", 160880444, "GPL-2",
         "~785 stamp images (PNG, RGBA) with captions in English and ~70 languages (.txt beside each)",
         {"stamps": "usr/share/tuxpaint/stamps"}),
    _deb("fonts-noto-color-emoji", "2.042-0+deb12u1",
         "a5ab0f69c7938423862320d9aca5dd187b3fd879d6a9a57dd52e17c3fa8d2751", 9893872,
         "OFL-1.1 (font), Apache-2.0 (tools)",
         "the Noto Color Emoji font (draw with Pillow at size 109, embedded_color=True)",
         {"font": "usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"}),
    _deb("linux-source-6.1", "6.1.176-1", "9305d1a151b8e83dcb88aa11361e7b9513f0c252bdf7f5647e4542762d99c094",
         139131140, "GPL-2", "the Linux kernel's source as one tar.xz (not unpacked here)",
         {"tarball": "usr/src/linux-source-6.1.tar.xz"}),
    _deb("fonts-wqy-microhei", "0.2.0-beta-3.1",
         "239163df984eea5c9da3b551aee374936222cdbd67f1a1be3cdcf3d76143ad66", 1605712,
         "Apache-2.0 or GPL-3+ with font exception", "a CJK font for plots (WenQuanYi Micro Hei)",
         {"font": "usr/share/fonts/truetype/wqy/wqy-microhei.ttc"}),
]}
