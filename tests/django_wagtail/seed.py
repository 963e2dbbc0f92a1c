"""Fill the test site: ``python seed.py source PAGES`` or ``python seed.py target``
(settings from the environment).

source: collections Photos and Downloads under the root, tagged images in them, a blog index
under the home page with PAGES blog pages (StreamField bodies with an image block and
rich text linking another page and embedding an image, a hero image, three tags, two related links), each
published, every fifth with a newer draft revision; a group "Blog editors" that may edit and
publish under the blog index and choose and add images in Photos.
target: a freshly migrated site with content of its own at the first tree positions: a
collection "Target assets" with a tagged image (one tag name shared with the source's), a
page "Target news" under home, and a group "Target editors" with page and collection
permissions on them.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import django


def _image(title: str, collection: Any) -> Any:
    from wagtail.images.models import Image

    return Image.objects.create(
        title=title, file=f"original_images/{title}.png", width=10, height=10, collection=collection
    )


def _group(name: str, page: Any, page_perms: list[str], collection: Any, image_perms: list[str]) -> None:
    """A group with page permissions on PAGE and image permissions on COLLECTION."""
    from django.contrib.auth.models import Group, Permission
    from wagtail.models import GroupCollectionPermission, GroupPagePermission

    group = Group.objects.create(name=name)
    group.permissions.add(
        Permission.objects.get(content_type__app_label="wagtailadmin", codename="access_admin")
    )
    for codename in page_perms:
        GroupPagePermission.objects.create(
            group=group,
            page=page,
            permission=Permission.objects.get(codename=codename, content_type__model="page"),
        )
    for codename in image_perms:
        permission = Permission.objects.get(codename=codename, content_type__app_label="wagtailimages")
        GroupCollectionPermission.objects.create(group=group, collection=collection, permission=permission)


def source(pages: int) -> None:
    from site_app.models import BlogIndexPage, BlogPage, BlogPageRelatedLink
    from wagtail.models import Collection, Page

    root = Collection.get_first_root_node()
    photos = root.add_child(name="Photos")
    downloads = root.add_child(name="Downloads")
    images = [_image(f"photo-{i:03d}", photos if i % 3 else downloads) for i in range(max(6, pages // 4))]
    for i, image in enumerate(images):  # taggit's generic tagged items (content type + object id)
        image.tags.add(f"shot-{i % 4}", "library")
    home = Page.objects.get(depth=2)
    blog = home.add_child(instance=BlogIndexPage(title="Blog", slug="blog", intro="<p>All posts</p>"))
    blog.save_revision().publish()
    made: list[BlogPage] = []
    for i in range(pages):
        link = made[i - 1].id if made else blog.id
        body = [
            {"type": "heading", "value": f"Post {i}"},
            {
                "type": "paragraph",
                "value": f'<p>See <a linktype="page" id="{link}">the previous post</a></p><embed alt="photo" '
                f'embedtype="image" format="left" id="{images[(i + 2) % len(images)].id}"/>',
            },
            {"type": "image", "value": images[i % len(images)].id},
        ]
        page = BlogPage(
            title=f"Post {i:03d}",
            slug=f"post-{i:03d}",
            date=dt.date(2024, 1, 1) + dt.timedelta(days=i),
            hero=images[(i + 1) % len(images)],
            body=json.dumps(body),
        )
        blog.add_child(instance=page)
        page.tags.add(f"topic-{i % 7}", f"year-{2024 + i % 2}", "blog")
        for j in range(2):
            page.related_links.add(
                BlogPageRelatedLink(sort_order=j, name=f"link {j}", url=f"https://example.org/{i}/{j}")
            )
        page.save()
        page.save_revision().publish()
        if i % 5 == 0:
            page.title = f"Post {i:03d} (draft)"
            page.save_revision()
        made.append(page)
    _group("Blog editors", blog, ["change_page", "publish_page"], photos, ["add_image", "choose_image"])


def target() -> None:
    from site_app.models import BlogIndexPage
    from wagtail.models import Collection, Page

    root = Collection.get_first_root_node()
    own = root.add_child(name="Target assets")
    logo = _image("target-logo", own)
    logo.tags.add("library", "brand")
    home = Page.objects.get(depth=2)
    news = home.add_child(instance=BlogIndexPage(title="Target news", slug="target-news"))
    news.save_revision().publish()
    _group("Target editors", news, ["change_page"], own, ["choose_image"])


if __name__ == "__main__":
    django.setup()
    if sys.argv[1] == "source":
        source(int(sys.argv[2]))
    else:
        target()
