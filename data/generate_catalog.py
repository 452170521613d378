#!/usr/bin/env python3
"""Generate Mercato's sample product catalog (data/catalog.jsonl).

What it does
------------
Writes 1,200 invented-but-plausible products, one compact JSON object per
line, to ``data/catalog.jsonl`` (next to this script).  The Mercato server
loads that file into an empty store on first start (unless ``--empty`` is
given), so the data is meant to make full-text search (with typos) and
facets (category, brand) return interesting results: words such as
"headphones", "wireless", "espresso", "running shoes", "yoga mat" and
"notebook" each match many products across several brands and categories.

Each line has exactly these fields:

    id                   int, 1..=1200, increasing
    sku                  str, unique, e.g. "ELEC-HEAD-000123"
    name                 str, unique, 3..=120 chars
    description          str, 1-3 sentences, <= 600 chars
    category             str, kebab-case slug (12 categories)
    brand                str, <= 60 chars (invented brand names)
    price                str, decimal with exactly two places, e.g. "19.99"
    attributes           object str -> str, 1..=5 entries, snake_case keys
    low_stock_threshold  int, 3..=25
    on_hand              int, ~5% zero, ~10% low (1..=threshold), rest > threshold

How to run
----------
From the repository root:

    python3 data/generate_catalog.py

Python 3.11+, standard library only.  The output is fully deterministic
(fixed seed, no dependence on hash randomisation, time or locale): running it
twice produces byte-identical files.  Pass ``--check`` to also validate the
written file and print a short summary.

Bigger catalogs (the search benchmark's)
----------------------------------------

    python3 data/generate_catalog.py --count 100000 --out /tmp/catalog-100k.jsonl --check

``--count N`` keeps the sample's category shares and stock plan (5% sold out,
10% low), gives each category about sqrt(N / 1200) times as many brands
(the sample's plus invented ones) and, once a product type runs out of plain
names, lists variants (a generation, model year, model code, pack size or
colour; for books, an edition).  ``--seed`` changes the random seed.  The
defaults produce the sample above, byte for byte; ids run 1..=N.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
from decimal import Decimal
from pathlib import Path

SEED = 20240611
TOTAL = 1200
OUT_PATH = Path(__file__).resolve().parent / "catalog.jsonl"

# --------------------------------------------------------------------------
# Shared value pools
# --------------------------------------------------------------------------

COLOURS = [
    "Black", "White", "Midnight Black", "Silver", "Space Gray", "Navy",
    "Forest Green", "Sand", "Slate Blue", "Charcoal", "Red", "Ivory", "Sage",
    "Blush Pink", "Olive", "Graphite", "Cobalt Blue", "Burgundy", "Teal",
    "Mustard", "Arctic White", "Coral",
]
APPAREL_COLOURS = [
    "Black", "White", "Navy", "Heather Grey", "Charcoal", "Olive", "Oatmeal",
    "Rust", "Forest Green", "Burgundy", "Sky Blue", "Sand", "Dusty Rose",
    "Indigo", "Camel", "Stone", "Cobalt", "Sage", "Cream", "Brick Red",
]
KITCHEN_COLOURS = [
    "Matte Black", "Stainless Steel", "Cream", "Sage Green", "Cherry Red",
    "Slate Grey", "White", "Copper", "Pastel Blue", "Graphite",
]
SIZES_ALPHA = ["XS", "S", "M", "L", "XL", "XXL"]


def grams(lo: int, hi: int, step: int = 5):
    return lambda r: f"{r.randrange(lo, hi + 1, step)} g"


def kilos(lo: float, hi: float):
    return lambda r: f"{r.uniform(lo, hi):.1f} kg"


def choice(pool):
    return lambda r: r.choice(pool)


# --------------------------------------------------------------------------
# Category definitions
#
# Each product type has:
#   code      4-letter SKU segment
#   weight    relative frequency inside its category
#   nouns     product nouns (searchable words live here)
#   price     (lo, hi) price range in store currency
#   attrs     key -> list of values or callable(rng) -> str
#   req       attribute keys always emitted
#   names     name templates; {brand} {model} {adj} {noun} {who} + attr keys
#   adjs      adjectives for {adj}
#   uses      "made for ..." phrases used in the intro sentence
#   features  full sentences describing features / materials
# --------------------------------------------------------------------------

CATEGORIES: dict[str, dict] = {}

# ---------------------------------------------------------------- electronics
CATEGORIES["electronics"] = {
    "code": "ELEC",
    "count": 170,
    "brands": ["Auralis", "Voltique", "Nexora", "Kestrel Audio", "Lumetra",
               "Brightwave", "Orbitek", "Sonaro", "Zentrix", "Pixelon"],
    "series": ["Pulse", "Aero", "Nova", "Echo", "Vibe", "Orbit", "Flux", "Zen",
               "Arc", "Halo", "Apex", "Core", "Edge", "Prime", "Nimbus",
               "Vertex", "Quill", "Stratus"],
    "closers": [
        "Backed by a two-year limited warranty.",
        "Ships with a braided USB-C cable and a quick-start guide.",
        "Firmware updates are delivered through the companion app.",
        "Includes a one-year warranty and free returns within 30 days.",
        "Packaged in fully recyclable, plastic-free materials.",
    ],
    "types": [
        {
            "code": "HEAD", "weight": 6,
            "nouns": ["Wireless Headphones", "Noise Cancelling Headphones",
                      "Over-Ear Headphones", "On-Ear Headphones",
                      "Studio Monitor Headphones", "Wireless Earbuds",
                      "True Wireless Earbuds", "Sport Earbuds",
                      "Bluetooth Headphones", "Gaming Headset"],
            "price": (19, 449),
            "attrs": {
                "colour": COLOURS,
                "connectivity": ["Bluetooth 5.3", "Bluetooth 5.2", "Wired 3.5 mm",
                                 "USB-C", "Bluetooth 5.3 + 3.5 mm"],
                "battery_life": ["20 hours", "24 hours", "30 hours", "40 hours",
                                 "60 hours", "8 hours (32 with case)",
                                 "6 hours (24 with case)"],
                "driver_size": ["10 mm", "12 mm", "40 mm", "45 mm", "50 mm"],
                "weight": grams(45, 320),
            },
            "req": ["colour"],
            "names": ["{brand} {model} {noun}", "{brand} {model} {adj} {noun}",
                      "{brand} {model} {noun}, {colour}",
                      "{brand} {adj} {noun} {model} - {colour}"],
            "adjs": ["Premium", "Lightweight", "Foldable", "Hi-Res", "Compact",
                     "Sweatproof", "Low-Latency", "Studio"],
            "uses": ["daily commutes and long flights", "focused work sessions",
                     "workouts and runs", "late-night gaming", "critical listening"],
            "features": [
                "Active noise cancellation blocks out engine hum and office chatter.",
                "Memory foam ear cushions wrapped in soft protein leather stay comfortable for hours.",
                "Custom dynamic drivers deliver rich, detailed sound with deep, controlled bass.",
                "Multipoint Bluetooth lets you switch between your phone and laptop instantly.",
                "A fast-charge mode gives five hours of playback from a ten-minute charge.",
                "Touch controls and a transparency mode let you hear announcements without removing them.",
                "An IPX4 sweat and splash rating makes them a good match for the gym.",
                "Beamforming microphones keep your voice clear on calls, even outdoors.",
            ],
        },
        {
            "code": "SPKR", "weight": 3,
            "nouns": ["Portable Bluetooth Speaker", "Smart Speaker", "Bookshelf Speakers",
                      "Soundbar", "Waterproof Speaker", "Wireless Party Speaker"],
            "price": (29, 799),
            "attrs": {
                "colour": COLOURS,
                "output_power": ["10 W", "20 W", "30 W", "60 W", "120 W", "240 W"],
                "battery_life": ["10 hours", "12 hours", "16 hours", "24 hours"],
                "water_resistance": ["IPX5", "IP67", "IPX7", "None"],
                "connectivity": ["Bluetooth 5.3", "Wi-Fi + Bluetooth", "HDMI eARC + Bluetooth",
                                 "Optical + Bluetooth"],
            },
            "req": ["output_power"],
            "names": ["{brand} {model} {noun}", "{brand} {model} {adj} {noun}, {colour}",
                      "{brand} {noun} {model}"],
            "adjs": ["Rugged", "Compact", "360-Degree", "Room-Filling", "Ultra-Portable"],
            "uses": ["beach days and backyard parties", "movie nights", "small apartments",
                     "kitchens and home offices"],
            "features": [
                "A passive bass radiator adds punch without distortion at high volume.",
                "Pair two units for true stereo sound with a single button.",
                "The fabric-wrapped aluminium body survives drops, dust and rain.",
                "Built-in voice assistant support lets you control music hands-free.",
                "Room calibration tunes the sound to your space in under a minute.",
                "Dialogue enhancement keeps voices clear during action scenes.",
            ],
        },
        {
            "code": "LAPT", "weight": 3,
            "nouns": ["Laptop", "Ultrabook", "Gaming Laptop", "2-in-1 Laptop",
                      "Chromebook", "Notebook PC"],
            "price": (249, 1499),
            "attrs": {
                "screen_size": ['13.3"', '14"', '15.6"', '16"', '17.3"'],
                "memory": ["8 GB RAM", "16 GB RAM", "32 GB RAM"],
                "storage": ["256 GB SSD", "512 GB SSD", "1 TB SSD", "2 TB SSD"],
                "processor": ["8-core", "10-core", "12-core", "6-core"],
                "colour": ["Space Gray", "Silver", "Midnight Black", "Graphite"],
            },
            "req": ["screen_size", "memory", "storage"],
            "names": ['{brand} {model} {screen_size} {noun}',
                      "{brand} {model} {noun}, {memory}, {storage}",
                      "{brand} {model} {adj} {noun}"],
            "adjs": ["Thin and Light", "Performance", "Creator", "Everyday", "Business"],
            "uses": ["students and remote work", "photo and video editing",
                     "business travel", "gaming on the go"],
            "features": [
                "The anti-glare display covers 100% of the sRGB colour gamut.",
                "A backlit keyboard with 1.5 mm key travel makes long typing sessions comfortable.",
                "The CNC-milled aluminium chassis weighs under 1.4 kg.",
                "Two USB-C ports with power delivery plus HDMI and a microSD reader.",
                "All-day battery life with fast charging to 50% in 30 minutes.",
                "Wi-Fi 6E and a 1080p webcam with a privacy shutter are built in.",
            ],
        },
        {
            "code": "PHON", "weight": 2,
            "nouns": ["Smartphone", "5G Smartphone", "Rugged Smartphone"],
            "price": (149, 1299),
            "attrs": {
                "storage": ["128 GB", "256 GB", "512 GB"],
                "colour": COLOURS,
                "screen_size": ['6.1"', '6.4"', '6.7"', '6.8"'],
                "camera": ["50 MP dual camera", "48 MP triple camera", "108 MP main camera"],
            },
            "req": ["storage", "colour"],
            "names": ["{brand} {model} {noun}, {storage}, {colour}", "{brand} {model} {noun} ({storage})"],
            "adjs": [],
            "uses": ["everyday photography", "heavy multitasking", "outdoor work sites"],
            "features": [
                "The OLED display refreshes at 120 Hz for smooth scrolling.",
                "Optical image stabilisation keeps night shots sharp.",
                "Gorilla-style toughened glass and an IP68 rating protect against drops and water.",
                "Supports 45 W wired and 15 W wireless charging.",
                "Guaranteed five years of security updates.",
            ],
        },
        {
            "code": "TABL", "weight": 2,
            "nouns": ["Tablet", "Drawing Tablet", "E-Reader", "Kids Tablet"],
            "price": (79, 1099),
            "attrs": {
                "screen_size": ['8"', '10.1"', '11"', '12.4"', '6.8"'],
                "storage": ["32 GB", "64 GB", "128 GB", "256 GB"],
                "colour": COLOURS,
                "connectivity": ["Wi-Fi", "Wi-Fi + 5G"],
            },
            "req": ["screen_size"],
            "names": ['{brand} {model} {screen_size} {noun}', "{brand} {model} {noun}, {storage}"],
            "adjs": [],
            "uses": ["reading and streaming", "digital sketching", "kids' learning apps"],
            "features": [
                "A glare-free display makes reading in direct sunlight easy.",
                "Pressure-sensitive stylus support with 4,096 levels.",
                "Battery lasts up to 12 hours of video playback.",
                "Parental controls and a shock-absorbing case come included.",
                "Quad speakers tuned for clear dialogue and music.",
            ],
        },
        {
            "code": "CAMR", "weight": 2,
            "nouns": ["Mirrorless Camera", "Action Camera", "Instant Camera", "4K Webcam",
                      "Security Camera", "Dash Cam", "Wireless Doorbell Camera"],
            "price": (39, 1499),
            "attrs": {
                "resolution": ["1080p", "2K", "4K", "24 MP", "33 MP"],
                "colour": ["Black", "White", "Silver", "Graphite"],
                "field_of_view": ["90 degrees", "120 degrees", "155 degrees"],
                "storage": ["microSD up to 256 GB", "Cloud + microSD", "SD UHS-II"],
            },
            "req": ["resolution"],
            "names": ["{brand} {model} {resolution} {noun}", "{brand} {model} {noun}",
                      "{brand} {adj} {noun} {model}"],
            "adjs": ["Waterproof", "Compact", "Night Vision", "Vlogging"],
            "uses": ["travel and vlogging", "home security", "video calls", "mountain biking"],
            "features": [
                "Colour night vision picks up detail in near-total darkness.",
                "Electronic stabilisation smooths out footage on bumpy trails.",
                "Dual stereo microphones with wind noise reduction.",
                "Motion alerts are sent straight to your phone.",
                "A fast hybrid autofocus tracks eyes and faces.",
            ],
        },
        {
            "code": "WTCH", "weight": 2,
            "nouns": ["Smartwatch", "Fitness Tracker", "GPS Running Watch", "Kids Smartwatch"],
            "price": (29, 499),
            "attrs": {
                "colour": COLOURS,
                "case_size": ["40 mm", "42 mm", "44 mm", "46 mm"],
                "battery_life": ["2 days", "7 days", "14 days", "21 days"],
                "water_resistance": ["5 ATM", "10 ATM", "IP68"],
                "band_material": ["Silicone", "Nylon", "Stainless Steel", "Leather"],
            },
            "req": ["colour"],
            "names": ["{brand} {model} {noun}, {case_size}", "{brand} {model} {noun} - {colour}",
                      "{brand} {model} {adj} {noun}"],
            "adjs": ["Slim", "Rugged", "Solar", "Lightweight"],
            "uses": ["runners and triathletes", "sleep and stress tracking", "everyday wear"],
            "features": [
                "Tracks heart rate, blood oxygen and sleep stages around the clock.",
                "Built-in dual-band GPS maps runs and rides without your phone.",
                "Over 100 workout modes, including swimming, yoga and strength training.",
                "The always-on AMOLED display stays readable in bright sunlight.",
                "Contactless payments and smartphone notifications on your wrist.",
            ],
        },
        {
            "code": "ACCS", "weight": 5,
            "nouns": ["Wireless Charger", "USB-C Charger", "Power Bank", "Wireless Mouse",
                      "Mechanical Keyboard", "Wireless Keyboard", "USB-C Hub", "HDMI Cable",
                      "Laptop Stand", "Wireless Charging Pad", "Ergonomic Mouse",
                      "Noise Cancelling Microphone"],
            "price": (15, 149),
            "attrs": {
                "colour": COLOURS,
                "capacity": ["10,000 mAh", "20,000 mAh", "26,800 mAh"],
                "output_power": ["15 W", "20 W", "30 W", "65 W", "100 W", "140 W"],
                "cable_length": ["1 m", "2 m", "3 m"],
                "compatibility": ["Windows, macOS, Linux", "iOS and Android", "USB-C devices",
                                  "Qi-enabled phones"],
            },
            "req": ["compatibility"],
            "names": ["{brand} {model} {noun}", "{brand} {adj} {noun}, {colour}",
                      "{brand} {model} {adj} {noun}"],
            "adjs": ["Slim", "Fast", "Travel", "Silent", "Rechargeable", "Magnetic", "Compact"],
            "uses": ["home offices", "travel bags", "desk setups", "charging on the go"],
            "features": [
                "Gallium nitride circuitry keeps it small and cool while charging a laptop.",
                "Silent switches and a rechargeable battery that lasts for months.",
                "Foreign object detection and overheat protection keep devices safe.",
                "The aluminium housing doubles as a heat sink.",
                "Hot-swappable switches and PBT keycaps for a satisfying typing feel.",
                "Pass-through charging lets you top up the power bank and phone at once.",
            ],
        },
        {
            "code": "MONI", "weight": 2,
            "nouns": ["Monitor", "Gaming Monitor", "Curved Monitor", "Portable Monitor"],
            "price": (119, 899),
            "attrs": {
                "screen_size": ['15.6"', '24"', '27"', '32"', '34"'],
                "resolution": ["1920x1080", "2560x1440", "3840x2160", "3440x1440"],
                "refresh_rate": ["60 Hz", "75 Hz", "144 Hz", "165 Hz", "240 Hz"],
                "panel_type": ["IPS", "VA", "OLED"],
            },
            "req": ["screen_size"],
            "names": ["{brand} {model} {screen_size} {noun}", "{brand} {screen_size} {adj} {noun} {model}"],
            "adjs": ["4K", "QHD", "Ultrawide", "USB-C", "Frameless"],
            "uses": ["competitive gaming", "spreadsheets and coding", "colour-accurate photo work"],
            "features": [
                "A single USB-C cable carries video, data and 65 W of power.",
                "Factory calibrated for accurate colour out of the box.",
                "The height-adjustable stand tilts, swivels and pivots.",
                "Adaptive sync eliminates tearing in fast games.",
                "Flicker-free backlight and a low blue light mode reduce eye strain.",
            ],
        },
    ],
}

# ---------------------------------------------------------------- home-kitchen
CATEGORIES["home-kitchen"] = {
    "code": "HOME",
    "count": 150,
    "brands": ["Copperleaf", "Hearthstone", "Maison Verre", "Kitchenary", "Oak & Ember",
               "Brevio", "Nordhaus", "Pantrywise", "CasaLuna", "Crème & Co."],
    "series": ["Barista", "Crema", "Classic", "Artisan", "Signature", "Heritage", "Aria",
               "Luxe", "Essentials", "Studio"],
    "closers": [
        "Dishwasher-safe parts make cleanup quick.",
        "Covered by a five-year limited warranty.",
        "Hand wash recommended to keep the finish looking new.",
        "BPA-free and food-safe throughout.",
        "Ships in recyclable packaging.",
    ],
    "types": [
        {
            "code": "ESPR", "weight": 3,
            "nouns": ["Espresso Machine", "Semi-Automatic Espresso Machine",
                      "Super-Automatic Espresso Machine", "Manual Lever Espresso Maker",
                      "Espresso Machine with Grinder"],
            "price": (149, 1299),
            "attrs": {
                "colour": KITCHEN_COLOURS,
                "pressure": ["9 bar", "15 bar", "19 bar", "20 bar"],
                "water_tank": ["1.2 L", "1.5 L", "1.8 L", "2 L"],
                "material": ["Brushed stainless steel", "Die-cast aluminium", "Stainless steel and glass"],
                "wattage": ["1350 W", "1450 W", "1600 W"],
            },
            "req": ["pressure"],
            "names": ["{brand} {model} {noun}", "{brand} {model} {noun}, {colour}",
                      "{brand} {adj} {noun} {model}"],
            "adjs": ["Compact", "Dual Boiler", "Professional", "Home Barista"],
            "uses": ["cafe-quality espresso at home", "morning lattes and cappuccinos",
                     "small kitchens"],
            "features": [
                "A steam wand microfoams milk for latte art.",
                "PID temperature control keeps the brew water within one degree.",
                "The integrated conical burr grinder has 30 grind settings.",
                "Pre-infusion gently blooms the coffee puck for balanced espresso.",
                "The 58 mm commercial-size portafilter is solid chrome-plated brass.",
                "Heats up in under 30 seconds with a thermoblock system.",
            ],
        },
        {
            "code": "COFF", "weight": 3,
            "nouns": ["Drip Coffee Maker", "French Press", "Burr Coffee Grinder",
                      "Pour-Over Coffee Set", "Milk Frother", "Moka Pot",
                      "Cold Brew Coffee Maker", "Espresso Tamper", "Gooseneck Kettle"],
            "price": (14, 229),
            "attrs": {
                "colour": KITCHEN_COLOURS,
                "capacity": ["350 ml", "600 ml", "1 L", "1.25 L", "12 cups", "6 cups"],
                "material": ["Borosilicate glass", "Stainless steel", "Aluminium", "Ceramic",
                             "Walnut and steel"],
            },
            "req": ["material"],
            "names": ["{brand} {noun}, {capacity}", "{brand} {model} {noun}",
                      "{brand} {adj} {noun} - {colour}"],
            "adjs": ["Double-Walled", "Programmable", "Stovetop", "Electric", "Classic"],
            "uses": ["slow weekend mornings", "brewing for a crowd", "espresso lovers"],
            "features": [
                "Double-walled construction keeps coffee hot for an hour.",
                "Forty stepped grind settings cover everything from espresso to cold brew.",
                "A fine mesh filter means no paper filters are needed.",
                "Programmable start lets you wake up to freshly brewed coffee.",
                "The precision spout gives you full control of the pour.",
            ],
        },
        {
            "code": "COOK", "weight": 4,
            "nouns": ["Nonstick Frying Pan", "Cast Iron Skillet", "Stainless Steel Saucepan",
                      "Dutch Oven", "Carbon Steel Wok", "Cookware Set", "Saute Pan",
                      "Sheet Pan Set", "Stock Pot"],
            "price": (19, 449),
            "attrs": {
                "material": ["Tri-ply stainless steel", "Enamelled cast iron", "Pre-seasoned cast iron",
                             "Hard-anodised aluminium", "Carbon steel", "Ceramic nonstick"],
                "size": ['8"', '10"', '12"', "5.5 qt", "7 qt", "3 qt", "10-piece"],
                "colour": KITCHEN_COLOURS,
                "induction_compatible": ["Yes", "No"],
            },
            "req": ["material", "size"],
            "names": ["{brand} {size} {noun}", "{brand} {adj} {noun}, {size}",
                      "{brand} {model} {noun} - {colour}"],
            "adjs": ["Professional", "Oven-Safe", "PFAS-Free", "Heavy-Duty", "Everyday"],
            "uses": ["searing, braising and baking", "weeknight dinners", "induction cooktops"],
            "features": [
                "Oven-safe to 260 C, lids included.",
                "An aluminium core spreads heat evenly with no hot spots.",
                "The PFAS-free ceramic coating releases eggs without oil.",
                "Stay-cool riveted handles give a secure grip.",
                "Gets better with every use as the seasoning builds.",
            ],
        },
        {
            "code": "KNIF", "weight": 2,
            "nouns": ["Chef's Knife", "Santoku Knife", "Paring Knife", "Knife Block Set",
                      "Bread Knife", "Kitchen Shears"],
            "price": (14, 299),
            "attrs": {
                "blade_material": ["German stainless steel", "Japanese VG-10 steel",
                                   "Damascus steel", "High-carbon steel"],
                "blade_length": ['3.5"', '5"', '7"', '8"', '9"'],
                "handle_material": ["Pakkawood", "Olive wood", "Polymer", "Walnut"],
            },
            "req": ["blade_material"],
            "names": ["{brand} {blade_length} {noun}", "{brand} {model} {noun}",
                      "{brand} {adj} {noun}"],
            "adjs": ["Forged", "Hand-Sharpened", "Damascus", "Full-Tang"],
            "uses": ["precise everyday prep", "home cooks and chefs"],
            "features": [
                "Hand-sharpened to a 15-degree edge that holds up to daily use.",
                "Full-tang forged construction gives excellent balance.",
                "The ergonomic handle resists moisture and stays grippy.",
                "Comes with a protective blade guard.",
            ],
        },
        {
            "code": "APPL", "weight": 4,
            "nouns": ["Blender", "Air Fryer", "Stand Mixer", "Electric Kettle", "Toaster",
                      "Slow Cooker", "Food Processor", "Rice Cooker", "Immersion Blender",
                      "Countertop Oven"],
            "price": (24, 499),
            "attrs": {
                "colour": KITCHEN_COLOURS,
                "capacity": ["1.7 L", "4 qt", "5.5 qt", "6 qt", "2-slice", "4-slice", "8 cups"],
                "wattage": ["800 W", "1200 W", "1500 W", "1700 W"],
                "material": ["Stainless steel", "BPA-free Tritan", "Glass", "Die-cast metal"],
            },
            "req": ["capacity"],
            "names": ["{brand} {model} {noun}, {capacity}", "{brand} {adj} {noun} - {colour}",
                      "{brand} {model} {adj} {noun}"],
            "adjs": ["Digital", "Compact", "Variable Speed", "Programmable", "Quiet"],
            "uses": ["quick weeknight meals", "smoothies and soups", "weekend baking"],
            "features": [
                "Eight one-touch presets take the guesswork out of cooking.",
                "A powerful motor crushes ice and frozen fruit in seconds.",
                "Auto shut-off and boil-dry protection add peace of mind.",
                "Uses up to 70% less oil than deep frying.",
                "The planetary mixing action reaches every part of the bowl.",
            ],
        },
        {
            "code": "BEDD", "weight": 3,
            "nouns": ["Duvet Cover Set", "Sheet Set", "Memory Foam Pillow", "Throw Blanket",
                      "Weighted Blanket", "Mattress Topper", "Quilt"],
            "price": (19, 279),
            "attrs": {
                "size": ["Twin", "Full", "Queen", "King", "California King", '50" x 60"'],
                "material": ["Organic cotton percale", "Linen", "Bamboo lyocell", "Cotton sateen",
                             "Chunky knit acrylic", "Sherpa fleece"],
                "colour": APPAREL_COLOURS,
                "thread_count": ["300", "400", "600"],
            },
            "req": ["size", "material"],
            "names": ["{brand} {adj} {noun}, {size}", "{brand} {noun} - {colour}, {size}",
                      "{brand} {material} {noun}"],
            "adjs": ["Breathable", "Cooling", "Stonewashed", "Cozy", "Hotel-Quality"],
            "uses": ["hot sleepers", "guest rooms", "cosy evenings on the sofa"],
            "features": [
                "Stonewashed for a soft, lived-in feel from the first night.",
                "Deep pockets fit mattresses up to 16 inches.",
                "Naturally breathable fibres wick moisture away.",
                "OEKO-TEX certified, free from harmful substances.",
                "Hidden button closure keeps the duvet in place.",
            ],
        },
        {
            "code": "DECO", "weight": 3,
            "nouns": ["Ceramic Vase", "Table Lamp", "Storage Baskets", "Wall Clock",
                      "Scented Candle", "Picture Frame Set", "Wall Mirror", "Area Rug"],
            "price": (9, 249),
            "attrs": {
                "colour": COLOURS,
                "material": ["Stoneware", "Seagrass", "Rattan", "Brass", "Solid oak", "Soy wax",
                             "Jute", "Glass"],
                "dimensions": ['8" x 8"', '12" tall', '5 x 8 ft', '24" diameter', "Set of 3"],
                "scent": ["Fig and Cedar", "Sea Salt", "Lavender", "Amber", "Fresh Linen"],
            },
            "req": ["material"],
            "names": ["{brand} {adj} {noun}, {colour}", "{brand} {material} {noun}",
                      "{brand} {noun} - {dimensions}"],
            "adjs": ["Handmade", "Minimalist", "Modern", "Rustic", "Woven", "Vintage-Style"],
            "uses": ["living rooms and entryways", "gifting", "small spaces"],
            "features": [
                "Each piece is hand-finished, so no two are exactly alike.",
                "The cotton wick burns cleanly for about 50 hours.",
                "Silent sweep movement, no ticking.",
                "Handwoven by artisans using natural fibres.",
                "Includes mounting hardware.",
            ],
        },
        {
            "code": "DINE", "weight": 3,
            "nouns": ["Dinnerware Set", "Espresso Cups", "Wine Glasses", "Coffee Mug",
                      "Serving Bowl", "Travel Mug", "Glass Food Storage Containers",
                      "Insulated Tumbler"],
            "price": (9, 179),
            "attrs": {
                "colour": KITCHEN_COLOURS,
                "material": ["Porcelain", "Stoneware", "Lead-free crystal", "Borosilicate glass",
                             "Stainless steel"],
                "capacity": ["80 ml", "350 ml", "470 ml", "590 ml", "750 ml"],
                "pieces": ["2", "4", "6", "12", "16"],
            },
            "req": ["material"],
            "names": ["{brand} {adj} {noun}, Set of {pieces}", "{brand} {noun}, {capacity}",
                      "{brand} {material} {noun} - {colour}"],
            "adjs": ["Stackable", "Double-Wall", "Reactive-Glaze", "Leakproof", "Matte"],
            "uses": ["everyday dining", "espresso and cortados", "dinner parties"],
            "features": [
                "Microwave, oven and dishwasher safe.",
                "Double-wall insulation keeps drinks hot for 6 hours or cold for 24.",
                "A reactive glaze gives every piece a unique finish.",
                "The leakproof lid locks tight for bags and backpacks.",
            ],
        },
    ],
}

# ---------------------------------------------------------------- clothing
CATEGORIES["clothing"] = {
    "code": "CLTH",
    "count": 140,
    "brands": ["Northbound", "Fielder & Co.", "Linea Basics", "Urban Thread", "Alder Row",
               "Coastline", "Merino Peak", "Brightside Apparel", "Kōen Studio"],
    "series": [],
    "closers": [
        "Machine wash cold, tumble dry low.",
        "Ethically made in a Fair Trade certified factory.",
        "True to size; size up for a relaxed fit.",
        "Cold wash and line dry to keep the shape.",
    ],
    "types": [
        {
            "code": "TSHR", "weight": 5,
            "nouns": ["Crew Neck T-Shirt", "V-Neck T-Shirt", "Graphic Tee", "Performance Tee",
                      "Long Sleeve Tee", "Pocket Tee", "Running Shirt"],
            "price": (9, 49),
            "attrs": {"size": SIZES_ALPHA, "colour": APPAREL_COLOURS,
                      "material": ["100% organic cotton", "Cotton-modal blend", "Recycled polyester",
                                   "Merino wool", "Slub cotton"],
                      "fit": ["Regular", "Slim", "Relaxed", "Oversized"]},
            "req": ["size", "colour"],
            "whos": ["Men's", "Women's", "Unisex", "Kids'"],
            "names": ["{brand} {who} {adj} {noun} - {colour}, {size}",
                      "{brand} {who} {noun}, {colour}",
                      "{brand} {who} {adj} {noun}"],
            "adjs": ["Essential", "Heavyweight", "Quick-Dry", "Soft-Wash", "Breathable", "Vintage"],
            "uses": ["everyday layering", "running and training", "weekends"],
            "features": [
                "Garment-dyed for a soft, broken-in feel.",
                "Moisture-wicking fabric dries fast and resists odour.",
                "Reinforced shoulder seams keep their shape wash after wash.",
                "Flatlock seams prevent chafing on long runs.",
            ],
        },
        {
            "code": "SWTR", "weight": 3,
            "nouns": ["Crew Neck Sweater", "Pullover Hoodie", "Zip Hoodie", "Cardigan",
                      "Quarter-Zip Pullover", "Cable Knit Sweater"],
            "price": (29, 159),
            "attrs": {"size": SIZES_ALPHA, "colour": APPAREL_COLOURS,
                      "material": ["Merino wool", "Cotton fleece", "Cashmere blend", "Lambswool",
                                   "Organic cotton French terry"],
                      "fit": ["Regular", "Relaxed", "Oversized"]},
            "req": ["size", "material"],
            "whos": ["Men's", "Women's", "Unisex"],
            "names": ["{brand} {who} {material} {noun}, {colour}",
                      "{brand} {who} {adj} {noun} - {colour}, {size}",
                      "{brand} {who} {noun}"],
            "adjs": ["Chunky", "Lightweight", "Brushed", "Classic", "Cozy"],
            "uses": ["cool evenings", "layering under a coat", "travel days"],
            "features": [
                "Ribbed cuffs and hem hold their shape.",
                "The brushed interior is soft against the skin.",
                "Naturally temperature-regulating and odour-resistant.",
                "A kangaroo pocket and lined hood add everyday comfort.",
            ],
        },
        {
            "code": "JCKT", "weight": 3,
            "nouns": ["Rain Jacket", "Puffer Jacket", "Denim Jacket", "Fleece Jacket",
                      "Softshell Jacket", "Running Jacket", "Wool Overcoat", "Insulated Parka"],
            "price": (49, 349),
            "attrs": {"size": SIZES_ALPHA, "colour": APPAREL_COLOURS,
                      "material": ["Recycled nylon", "Waxed cotton", "Wool blend", "Rigid denim",
                                   "Polartec fleece", "Recycled polyester ripstop"],
                      "insulation": ["600-fill down", "Synthetic", "None"],
                      "water_resistance": ["Waterproof 20K", "Water-resistant DWR", "None"]},
            "req": ["size", "colour"],
            "whos": ["Men's", "Women's", "Unisex"],
            "names": ["{brand} {who} {adj} {noun} - {colour}",
                      "{brand} {who} {noun}, {colour}, {size}",
                      "{brand} {who} {material} {noun}"],
            "adjs": ["Packable", "Waterproof", "Windproof", "Lightweight", "Insulated", "Reflective"],
            "uses": ["wet commutes", "hiking and trail running", "cold winter days"],
            "features": [
                "Fully taped seams and a waterproof membrane keep rain out.",
                "Packs into its own chest pocket.",
                "Reflective details improve visibility at night.",
                "Pit zips dump heat on steep climbs.",
                "An adjustable storm hood fits over a helmet.",
            ],
        },
        {
            "code": "PANT", "weight": 4,
            "nouns": ["Slim Fit Jeans", "Straight Leg Jeans", "Chino Pants", "Joggers",
                      "Yoga Leggings", "Running Shorts", "Cargo Pants", "Hiking Pants",
                      "Yoga Pants"],
            "price": (19, 139),
            "attrs": {"size": ["28W x 30L", "30W x 32L", "32W x 32L", "34W x 32L", "36W x 34L",
                               "XS", "S", "M", "L", "XL"],
                      "colour": APPAREL_COLOURS,
                      "material": ["Stretch denim", "Organic cotton twill", "Nylon-spandex",
                                   "Recycled polyester", "Brushed jersey"],
                      "inseam": ['5"', '7"', '28"', '30"', '32"'],
                      "rise": ["Mid", "High", "Low"]},
            "req": ["size"],
            "whos": ["Men's", "Women's", "Unisex"],
            "names": ["{brand} {who} {adj} {noun} - {colour}",
                      "{brand} {who} {noun}, {colour}, {size}",
                      "{brand} {who} {noun}"],
            "adjs": ["Stretch", "High-Waisted", "Tapered", "Lightweight", "Four-Way Stretch",
                     "Quick-Dry"],
            "uses": ["yoga and studio classes", "everyday wear", "trail days", "running"],
            "features": [
                "Four-way stretch fabric moves with you through every pose.",
                "A hidden waistband pocket holds keys and cards.",
                "Gusseted crotch for unrestricted movement.",
                "Built-in liner and a zip pocket for long runs.",
                "Rinse-washed for a soft hand and minimal shrinkage.",
            ],
        },
        {
            "code": "DRSS", "weight": 2,
            "nouns": ["Wrap Dress", "Midi Dress", "Shirt Dress", "Slip Dress", "Sweater Dress"],
            "price": (29, 179),
            "attrs": {"size": SIZES_ALPHA, "colour": APPAREL_COLOURS,
                      "material": ["Linen", "Viscose crepe", "Silk", "Organic cotton poplin",
                                   "Merino knit"],
                      "length": ["Mini", "Knee-length", "Midi", "Maxi"]},
            "req": ["size", "colour"],
            "whos": ["Women's"],
            "names": ["{brand} {who} {material} {noun}, {colour}",
                      "{brand} {adj} {noun} - {colour}, {size}"],
            "adjs": ["Floral", "Tiered", "Belted", "Flowy", "Ribbed"],
            "uses": ["summer weddings", "the office", "warm-weather travel"],
            "features": [
                "Adjustable tie waist for a flattering fit.",
                "Side-seam pockets, because every dress needs them.",
                "Fully lined so it is never see-through.",
                "Lightweight fabric breathes on the hottest days.",
            ],
        },
        {
            "code": "ACCS", "weight": 3,
            "nouns": ["Wool Beanie", "Leather Belt", "Running Socks (3-Pack)", "Scarf",
                      "Baseball Cap", "Touchscreen Gloves", "Hiking Socks (2-Pack)",
                      "Sun Hat"],
            "price": (9, 79),
            "attrs": {"size": ["One Size", "S/M", "L/XL", "32", "34", "36"],
                      "colour": APPAREL_COLOURS,
                      "material": ["Merino wool", "Full-grain leather", "Organic cotton",
                                   "Recycled polyester", "Cashmere"]},
            "req": ["colour"],
            "whos": ["Men's", "Women's", "Unisex"],
            "names": ["{brand} {who} {noun} - {colour}", "{brand} {adj} {noun}, {colour}",
                      "{brand} {material} {noun}"],
            "adjs": ["Cushioned", "Ribbed", "Classic", "Water-Repellent", "Reversible"],
            "uses": ["cold mornings", "long hikes and runs", "everyday outfits"],
            "features": [
                "Arch support and a cushioned sole reduce blisters.",
                "Vegetable-tanned leather develops a rich patina.",
                "Touchscreen-friendly fingertips.",
                "UPF 50+ sun protection.",
            ],
        },
    ],
}

# ---------------------------------------------------------------- shoes
CATEGORIES["shoes"] = {
    "code": "SHOE",
    "count": 100,
    "brands": ["Stridewell", "Trailfox", "Velocity Run", "Cobble & Last", "Airloft",
               "Summit Tread", "Pavement", "Kinetic"],
    "series": ["Cloudstride", "Tempo", "Ridgeline", "Glide", "Pacer", "Swift", "Terra",
               "Horizon", "Boost", "Drift", "Apex", "Flow"],
    "closers": [
        "Fits true to size.",
        "Free exchanges if the size is not right.",
        "Removable insole fits custom orthotics.",
        "Spot clean with a damp cloth.",
    ],
    "types": [
        {
            "code": "RUNS", "weight": 6,
            "nouns": ["Running Shoes", "Trail Running Shoes", "Road Running Shoes",
                      "Racing Flats", "Cushioned Running Shoes", "Stability Running Shoes"],
            "price": (59, 249),
            "attrs": {"size": [f"US {s}" for s in
                               ["6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5",
                                "11", "11.5", "12", "13"]],
                      "colour": COLOURS,
                      "width": ["Regular", "Wide", "Extra Wide", "Narrow"],
                      "drop": ["4 mm", "6 mm", "8 mm", "10 mm", "12 mm"],
                      "weight": grams(190, 330)},
            "req": ["size", "colour"],
            "whos": ["Men's", "Women's"],
            "names": ["{brand} {model} {who} {noun}", "{brand} {model} {who} {noun} - {colour}",
                      "{brand} {who} {adj} {noun}, {size}"],
            "adjs": ["Lightweight", "Waterproof", "Carbon-Plated", "Max Cushion", "Neutral"],
            "uses": ["daily training miles", "race day", "muddy mountain trails", "marathon training"],
            "features": [
                "A nitrogen-infused foam midsole returns energy with every stride.",
                "The engineered mesh upper breathes and stretches with your foot.",
                "Aggressive 5 mm lugs grip on mud, rock and loose gravel.",
                "A carbon fibre plate adds snap at tempo and race pace.",
                "Reflective overlays keep you visible on early morning runs.",
            ],
        },
        {
            "code": "SNKR", "weight": 4,
            "nouns": ["Canvas Sneakers", "Leather Sneakers", "Slip-On Sneakers",
                      "High-Top Sneakers", "Knit Sneakers"],
            "price": (39, 169),
            "attrs": {"size": [f"US {s}" for s in ["5", "6", "7", "8", "9", "10", "11", "12"]],
                      "colour": COLOURS,
                      "material": ["Organic canvas", "Full-grain leather", "Recycled knit",
                                   "Suede"]},
            "req": ["size"],
            "whos": ["Men's", "Women's", "Unisex", "Kids'"],
            "names": ["{brand} {model} {who} {noun}, {colour}", "{brand} {who} {adj} {noun}",
                      "{brand} {who} {material} {noun} - {colour}"],
            "adjs": ["Classic", "Minimal", "Everyday", "Retro", "Vegan"],
            "uses": ["everyday wear", "city walking", "casual Fridays"],
            "features": [
                "A vulcanised rubber sole adds grip and flexibility.",
                "Cushioned cork-blend footbed moulds to your foot.",
                "Made with upper materials from recycled bottles.",
                "Padded collar and tongue for all-day comfort.",
            ],
        },
        {
            "code": "BOOT", "weight": 3,
            "nouns": ["Hiking Boots", "Chelsea Boots", "Waterproof Winter Boots", "Work Boots",
                      "Ankle Boots", "Rain Boots"],
            "price": (59, 299),
            "attrs": {"size": [f"US {s}" for s in ["6", "7", "8", "9", "10", "11", "12"]],
                      "colour": ["Black", "Brown", "Tan", "Chestnut", "Olive", "Grey"],
                      "material": ["Nubuck leather", "Suede", "Full-grain leather",
                                   "Natural rubber"],
                      "water_resistance": ["Waterproof", "Water-resistant"]},
            "req": ["size", "material"],
            "whos": ["Men's", "Women's"],
            "names": ["{brand} {model} {who} {noun}", "{brand} {who} {adj} {noun} - {colour}"],
            "adjs": ["Waterproof", "Insulated", "Steel-Toe", "Lug Sole", "Lightweight"],
            "uses": ["backpacking trips", "slushy city winters", "job sites"],
            "features": [
                "A waterproof breathable membrane keeps feet dry.",
                "Vibram-style lug outsole grips on wet rock.",
                "200 g of insulation keeps toes warm down to -25 C.",
                "Goodyear welted so the soles can be replaced.",
            ],
        },
        {
            "code": "SAND", "weight": 2,
            "nouns": ["Sandals", "Slides", "Flip-Flops", "Hiking Sandals", "Recovery Slides"],
            "price": (15, 99),
            "attrs": {"size": [f"US {s}" for s in ["5", "6", "7", "8", "9", "10", "11", "12"]],
                      "colour": COLOURS,
                      "material": ["EVA foam", "Cork and leather", "Recycled rubber"]},
            "req": ["size"],
            "whos": ["Men's", "Women's", "Unisex"],
            "names": ["{brand} {who} {noun} - {colour}", "{brand} {model} {who} {adj} {noun}"],
            "adjs": ["Cushioned", "Adjustable", "Waterproof", "Arch Support"],
            "uses": ["the beach", "post-run recovery", "summer travel"],
            "features": [
                "The contoured footbed supports your arch.",
                "Quick-drying straps can go straight into the water.",
                "Soft recovery foam cushions tired feet.",
            ],
        },
        {
            "code": "DRES", "weight": 2,
            "nouns": ["Oxford Shoes", "Penny Loafers", "Ballet Flats", "Derby Shoes",
                      "Block Heel Pumps"],
            "price": (49, 249),
            "attrs": {"size": [f"US {s}" for s in ["5", "6", "7", "8", "9", "10", "11", "12"]],
                      "colour": ["Black", "Brown", "Tan", "Burgundy", "Navy", "Nude"],
                      "material": ["Calf leather", "Suede", "Patent leather", "Vegan leather"],
                      "heel_height": ["0.5 in", "1 in", "2 in", "2.5 in"]},
            "req": ["material"],
            "whos": ["Men's", "Women's"],
            "names": ["{brand} {who} {material} {noun}", "{brand} {who} {noun} - {colour}, {size}"],
            "adjs": ["Classic", "Cushioned", "Handcrafted"],
            "uses": ["the office", "weddings and formal events"],
            "features": [
                "Blake-stitched leather soles flex from day one.",
                "A padded insole makes them comfortable for all-day wear.",
                "Hand-burnished leather with a subtle sheen.",
            ],
        },
        {
            "code": "TRNR", "weight": 3,
            "nouns": ["Cross Training Shoes", "Walking Shoes", "Court Shoes", "Cycling Shoes",
                      "Gym Shoes", "Barefoot Shoes"],
            "price": (49, 199),
            "attrs": {"size": [f"US {s}" for s in ["6", "7", "8", "9", "10", "11", "12"]],
                      "colour": COLOURS,
                      "width": ["Regular", "Wide"],
                      "weight": grams(220, 380)},
            "req": ["size"],
            "whos": ["Men's", "Women's"],
            "names": ["{brand} {model} {who} {noun}", "{brand} {who} {adj} {noun} - {colour}"],
            "adjs": ["Stable", "Lightweight", "Breathable", "Zero-Drop", "Supportive"],
            "uses": ["HIIT and lifting", "long walks", "tennis and pickleball"],
            "features": [
                "A flat, stable base for squats and deadlifts.",
                "Wide toe box lets your toes spread naturally.",
                "Durable rubber wraps up the sides for rope climbs.",
                "Cushioned heel absorbs impact on hard pavement.",
            ],
        },
    ],
}

# ---------------------------------------------------------------- sports-outdoors
CATEGORIES["sports-outdoors"] = {
    "code": "SPRT",
    "count": 120,
    "brands": ["Peakline", "Trailhead Gear", "Flexa", "Ironform", "Bluewater", "Summitcraft",
               "Kinetic Labs", "Northpoint", "Zenflow"],
    "series": ["Summit", "Ridge", "Basecamp", "Alpine", "Vista", "Traverse", "Cascade", "Sierra"],
    "closers": [
        "Lifetime guarantee against manufacturing defects.",
        "Tested by athletes and guides in real conditions.",
        "Comes with a storage bag.",
        "Wipe clean with mild soap and water.",
    ],
    "types": [
        {
            "code": "YOGA", "weight": 5,
            "nouns": ["Yoga Mat", "Non-Slip Yoga Mat", "Travel Yoga Mat", "Extra Thick Yoga Mat",
                      "Cork Yoga Block", "Yoga Strap", "Yoga Mat Bag", "Meditation Cushion"],
            "price": (12, 139),
            "attrs": {"colour": COLOURS,
                      "thickness": ["1.5 mm", "3 mm", "4 mm", "6 mm", "10 mm"],
                      "material": ["Natural tree rubber", "TPE", "Cork", "PU leather and rubber",
                                   "Organic cotton", "Buckwheat hulls"],
                      "dimensions": ['72" x 24"', '74" x 26"', '68" x 24"', '9" x 6" x 4"']},
            "req": ["material"],
            "names": ["{brand} {adj} {noun}, {thickness}", "{brand} {noun} - {colour}",
                      "{brand} {material} {noun}"],
            "adjs": ["Eco-Friendly", "Non-Slip", "Cushioned", "Lightweight", "Grippy", "Foldable"],
            "uses": ["hot yoga and vinyasa flow", "pilates and stretching", "yoga on the go"],
            "features": [
                "A non-slip polyurethane top layer grips even in sweaty hot yoga.",
                "Alignment lines help you set up every pose correctly.",
                "Dense natural rubber cushions knees and wrists without feeling wobbly.",
                "Folds small enough to fit in a carry-on.",
                "Closed-cell surface resists moisture and odour.",
            ],
        },
        {
            "code": "FITN", "weight": 4,
            "nouns": ["Adjustable Dumbbells", "Kettlebell", "Resistance Bands Set", "Foam Roller",
                      "Jump Rope", "Pull-Up Bar", "Weight Bench", "Ab Roller", "Workout Mat"],
            "price": (9, 449),
            "attrs": {"weight": ["5 kg", "8 kg", "12 kg", "16 kg", "24 kg", "2.5-24 kg"],
                      "material": ["Cast iron", "Natural latex", "High-density EVA foam",
                                   "Steel", "Neoprene-coated iron"],
                      "colour": COLOURS,
                      "resistance_level": ["Light", "Medium", "Heavy", "5-level set"]},
            "req": ["material"],
            "names": ["{brand} {adj} {noun}", "{brand} {noun}, {weight}", "{brand} {model} {noun}"],
            "adjs": ["Home Gym", "Space-Saving", "Heavy-Duty", "Compact", "Pro"],
            "uses": ["home workouts", "strength training", "post-run recovery"],
            "features": [
                "A quick-turn dial changes the weight in two seconds.",
                "Powder-coated handles give a secure, chalk-friendly grip.",
                "Textured surface digs into tight muscles.",
                "Includes a door anchor and a guide with 30 exercises.",
            ],
        },
        {
            "code": "CAMP", "weight": 4,
            "nouns": ["Backpacking Tent", "Sleeping Bag", "Camping Stove", "Headlamp",
                      "Trekking Poles", "Insulated Water Bottle", "Hiking Backpack",
                      "Camping Hammock", "Sleeping Pad"],
            "price": (12, 549),
            "attrs": {"capacity": ["1-person", "2-person", "4-person", "28 L", "45 L", "65 L",
                                   "750 ml", "1 L"],
                      "weight": kilos(0.1, 3.2),
                      "colour": COLOURS,
                      "temperature_rating": ["-7 C", "-1 C", "4 C", "10 C"],
                      "material": ["Ripstop nylon", "Aluminium", "Carbon fibre",
                                   "18/8 stainless steel"]},
            "req": ["capacity"],
            "names": ["{brand} {model} {noun}, {capacity}", "{brand} {adj} {noun} - {colour}",
                      "{brand} {model} {adj} {noun}"],
            "adjs": ["Ultralight", "Waterproof", "Rechargeable", "Packable", "Insulated"],
            "uses": ["thru-hikes and overnight trips", "car camping", "alpine starts"],
            "features": [
                "Weighs less than a litre of water when packed.",
                "Double-wall vacuum insulation keeps water cold for 24 hours.",
                "A 400-lumen beam with red night mode and USB-C charging.",
                "Colour-coded poles make pitching fast even in the dark.",
                "An adjustable torso fits a wide range of body lengths.",
            ],
        },
        {
            "code": "CYCL", "weight": 3,
            "nouns": ["Bike Helmet", "Bike Light Set", "Cycling Gloves", "Bike Lock",
                      "Mini Bike Pump", "Bike Repair Kit", "Bike Phone Mount"],
            "price": (12, 199),
            "attrs": {"colour": COLOURS,
                      "size": ["S", "M", "L", "One Size"],
                      "material": ["Hardened steel", "Aluminium", "In-mould polycarbonate"],
                      "brightness": ["400 lumens", "800 lumens", "1200 lumens"]},
            "req": ["colour"],
            "names": ["{brand} {model} {noun}", "{brand} {adj} {noun} - {colour}"],
            "adjs": ["Rechargeable", "Lightweight", "Aero", "Commuter", "Mountain"],
            "uses": ["commuting", "road and gravel riding", "mountain biking"],
            "features": [
                "MIPS-style liner reduces rotational forces in a crash.",
                "USB-C rechargeable with a 6-hour flash mode.",
                "Gel palm padding reduces numbness on long rides.",
            ],
        },
        {
            "code": "BALL", "weight": 3,
            "nouns": ["Soccer Ball", "Basketball", "Tennis Racket", "Pickleball Paddle Set",
                      "Volleyball", "Badminton Set", "Table Tennis Paddle"],
            "price": (12, 229),
            "attrs": {"size": ["Size 3", "Size 4", "Size 5", "Size 7", "Official size"],
                      "material": ["Composite leather", "Graphite", "Fibreglass",
                                   "Thermo-bonded PU"],
                      "colour": COLOURS,
                      "skill_level": ["Beginner", "Intermediate", "Advanced"]},
            "req": ["size"],
            "names": ["{brand} {model} {noun}", "{brand} {adj} {noun}, {size}"],
            "adjs": ["Match", "Training", "Indoor/Outdoor", "Pro", "Tournament"],
            "uses": ["club training", "backyard games", "league play"],
            "features": [
                "Thermo-bonded panels for a consistent flight.",
                "A graphite face adds control and spin.",
                "Deep channel grooves give a sure grip.",
            ],
        },
        {
            "code": "RUNA", "weight": 2,
            "nouns": ["Running Belt", "Hydration Vest", "Running Armband", "Reflective Running Vest",
                      "Running Cap", "Handheld Water Bottle"],
            "price": (12, 149),
            "attrs": {"colour": COLOURS, "size": ["XS/S", "M/L", "One Size"],
                      "capacity": ["500 ml", "1.5 L", "5 L", "12 L"]},
            "req": ["size"],
            "names": ["{brand} {model} {noun}", "{brand} {adj} {noun} - {colour}"],
            "adjs": ["Bounce-Free", "Reflective", "Lightweight", "Trail"],
            "uses": ["long runs and ultramarathons", "night running"],
            "features": [
                "A bounce-free fit keeps your phone and keys secure.",
                "Soft flasks collapse as you drink.",
                "360-degree reflective trim.",
            ],
        },
    ],
}

# ---------------------------------------------------------------- toys-games
CATEGORIES["toys-games"] = {
    "code": "TOYS",
    "count": 80,
    "brands": ["Brickwise", "Little Comet", "Puzzleworks", "Meeple & Co.", "Tinker Town",
               "Playfield", "Starling Toys", "Wonderbox"],
    "series": ["Explorer", "Galaxy", "Safari", "City", "Castle", "Ocean", "Robo", "Dino"],
    "closers": [
        "Meets ASTM F963 and EN 71 toy safety standards.",
        "Batteries not included.",
        "Contains small parts; not for children under 3.",
        "Makes a great birthday gift.",
    ],
    "types": [
        {
            "code": "BLDG", "weight": 3,
            "nouns": ["Building Set", "Magnetic Tiles Set", "Marble Run", "Wooden Block Set",
                      "Construction Kit"],
            "price": (14, 199),
            "attrs": {"age_range": ["3+", "4+", "6+", "8+", "10+", "12+"],
                      "pieces": ["48", "100", "250", "520", "1,050"],
                      "material": ["ABS plastic", "FSC-certified beech wood", "Magnetic ABS"]},
            "req": ["pieces", "age_range"],
            "names": ["{brand} {model} {noun}, {pieces} Pieces", "{brand} {adj} {noun}"],
            "adjs": ["Creative", "Deluxe", "Starter", "Space Station", "Castle"],
            "uses": ["open-ended creative play", "family building nights"],
            "features": [
                "Compatible with other major building brick systems.",
                "Step-by-step illustrated instructions for three different builds.",
                "Strong magnets click together for sturdy towers.",
            ],
        },
        {
            "code": "PUZZ", "weight": 3,
            "nouns": ["Jigsaw Puzzle", "3D Puzzle", "Brain Teaser Set", "Floor Puzzle"],
            "price": (9, 49),
            "attrs": {"pieces": ["24", "100", "300", "500", "1,000", "1,500", "2,000"],
                      "age_range": ["3+", "8+", "12+", "Adult"],
                      "theme": ["Mountain Lake", "Vintage Map", "Botanical Garden", "Night Sky",
                                "Coral Reef", "Autumn Village", "Cats in the Library"]},
            "req": ["pieces"],
            "names": ["{brand} {theme} {pieces}-Piece {noun}", "{brand} {adj} {noun} - {theme}"],
            "adjs": ["Panoramic", "Glow-in-the-Dark", "Family", "Challenging"],
            "uses": ["rainy afternoons", "puzzle lovers", "mindful evenings"],
            "features": [
                "Thick, precision-cut pieces snap together with no false fits.",
                "Printed on recycled board with vegetable-based inks.",
                "Includes a full-size reference poster.",
            ],
        },
        {
            "code": "BRDG", "weight": 4,
            "nouns": ["Board Game", "Strategy Board Game", "Party Card Game", "Cooperative Board Game",
                      "Word Game", "Chess Set", "Trivia Game"],
            "price": (12, 89),
            "attrs": {"players": ["1-4", "2", "2-4", "2-6", "3-8", "4-10"],
                      "play_time": ["15 min", "30 min", "45 min", "60-90 min"],
                      "age_range": ["6+", "8+", "10+", "14+"]},
            "req": ["players"],
            "names": ["{brand} {game_title}: {adj} {noun}", "{brand} {game_title} {noun}"],
            "adjs": ["Family", "Deluxe Edition", "Travel Edition", "Classic"],
            "uses": ["family game night", "parties", "two-player evenings"],
            "features": [
                "Easy to learn in ten minutes, with plenty of depth for replays.",
                "Beautifully illustrated cards and wooden tokens.",
                "Work together to beat the game before time runs out.",
            ],
        },
        {
            "code": "PLSH", "weight": 2,
            "nouns": ["Plush Toy", "Stuffed Animal", "Weighted Plush"],
            "price": (9, 49),
            "attrs": {"animal": ["Bunny", "Sloth", "Bear", "Narwhal", "Fox", "Dinosaur",
                                 "Penguin", "Octopus"],
                      "height": ['8"', '12"', '16"', '20"'],
                      "material": ["Recycled polyester plush", "Organic cotton"]},
            "req": ["animal"],
            "names": ["{brand} {adj} {animal} {noun}, {height}", "{brand} {animal} {noun}"],
            "adjs": ["Cuddly", "Huggable", "Jumbo", "Super Soft"],
            "uses": ["bedtime snuggles", "newborn gifts"],
            "features": [
                "Surface washable and made from super-soft plush.",
                "Embroidered eyes are safe for all ages.",
            ],
        },
        {
            "code": "STEM", "weight": 3,
            "nouns": ["Robotics Kit", "Coding Robot", "Science Kit", "Microscope Kit",
                      "Circuit Kit", "Telescope for Kids", "Crystal Growing Kit"],
            "price": (19, 159),
            "attrs": {"age_range": ["5+", "8+", "10+", "12+"],
                      "power": ["3 AAA batteries", "Rechargeable", "USB"],
                      "experiments": ["12", "20", "35", "60"]},
            "req": ["age_range"],
            "names": ["{brand} {model} {noun}", "{brand} {adj} {noun}, Ages {age_range}"],
            "adjs": ["STEM", "Programmable", "Beginner", "Junior"],
            "uses": ["curious young engineers", "homeschool science"],
            "features": [
                "Kids program the robot with colour cards or a free app.",
                "A full-colour lab guide explains the science behind every experiment.",
                "Snap-together modules, no soldering required.",
            ],
        },
        {
            "code": "RCTY", "weight": 2,
            "nouns": ["Remote Control Car", "Mini Drone", "RC Monster Truck", "Remote Control Boat"],
            "price": (24, 179),
            "attrs": {"age_range": ["6+", "8+", "14+"],
                      "top_speed": ["15 km/h", "25 km/h", "40 km/h"],
                      "battery_life": ["12 min", "20 min", "25 min"],
                      "colour": COLOURS},
            "req": ["age_range"],
            "names": ["{brand} {model} {noun}", "{brand} {adj} {noun} - {colour}"],
            "adjs": ["All-Terrain", "High-Speed", "Waterproof", "Beginner"],
            "uses": ["backyard racing", "first-time pilots"],
            "features": [
                "Hobby-grade shocks handle jumps and gravel.",
                "Altitude hold and one-key takeoff make flying easy.",
                "Two rechargeable batteries double the run time.",
            ],
        },
        {
            "code": "ARTS", "weight": 2,
            "nouns": ["Art Set", "Watercolor Paint Set", "Friendship Bracelet Kit", "Modelling Clay Set",
                      "Sketchbook and Crayons Set"],
            "price": (9, 49),
            "attrs": {"age_range": ["3+", "5+", "8+"],
                      "pieces": ["24", "48", "80", "150"],
                      "material": ["Non-toxic washable paint", "Air-dry clay", "Beeswax crayons"]},
            "req": ["age_range"],
            "names": ["{brand} {adj} {noun}, {pieces} Pieces", "{brand} {noun}"],
            "adjs": ["Deluxe", "Washable", "Travel"],
            "uses": ["rainy-day crafts", "young artists"],
            "features": [
                "Everything comes in a sturdy, portable case.",
                "Washable formulas come out of clothes and tables.",
            ],
        },
    ],
}

# ---------------------------------------------------------------- beauty
CATEGORIES["beauty"] = {
    "code": "BEAU",
    "count": 90,
    "brands": ["Lumière Botanics", "Pure Petal", "Dermaly", "Glowhaus", "Verdant Skin",
               "Silk & Stone", "Auric", "Maren"],
    "series": ["Radiance", "Daily", "Hydra", "Velvet", "Clarity", "Renew"],
    "closers": [
        "Dermatologist tested and cruelty-free.",
        "Vegan formula, free from parabens and sulfates.",
        "Patch test before first use.",
        "Packaged in recycled glass and aluminium.",
    ],
    "types": [
        {
            "code": "SKIN", "weight": 5,
            "nouns": ["Hydrating Face Serum", "Vitamin C Serum", "Daily Moisturizer SPF 30",
                      "Gel Cleanser", "Retinol Night Cream", "Clay Face Mask", "Eye Cream",
                      "Niacinamide Serum", "Mineral Sunscreen SPF 50", "Toner"],
            "price": (8, 89),
            "attrs": {"size": ["15 ml", "30 ml", "50 ml", "100 ml", "150 ml"],
                      "skin_type": ["All skin types", "Dry", "Oily", "Combination", "Sensitive"],
                      "key_ingredient": ["Hyaluronic acid", "Niacinamide", "Vitamin C",
                                         "Retinol", "Ceramides", "Kaolin clay", "Squalane"],
                      "scent": ["Unscented", "Citrus", "Green tea", "Rose"]},
            "req": ["size"],
            "names": ["{brand} {noun}, {size}", "{brand} {model} {noun}",
                      "{brand} {adj} {noun}"],
            "adjs": ["Fragrance-Free", "Brightening", "Gentle", "Overnight", "Lightweight"],
            "uses": ["dull, dehydrated skin", "morning and evening routines", "sensitive skin"],
            "features": [
                "Multi-weight hyaluronic acid plumps and hydrates.",
                "Absorbs quickly without leaving a greasy film.",
                "Brightens uneven tone in as little as four weeks.",
                "Non-comedogenic and suitable for acne-prone skin.",
            ],
        },
        {
            "code": "HAIR", "weight": 3,
            "nouns": ["Argan Oil Shampoo", "Repair Conditioner", "Hair Mask", "Ionic Hair Dryer",
                      "Ceramic Hair Straightener", "Curling Wand", "Dry Shampoo"],
            "price": (7, 249),
            "attrs": {"size": ["200 ml", "250 ml", "500 ml", "1 L", "One Size"],
                      "hair_type": ["All hair types", "Curly", "Fine", "Colour-treated", "Thick"],
                      "wattage": ["1200 W", "1800 W", "2000 W"],
                      "scent": ["Coconut", "Unscented", "Citrus", "Lavender"]},
            "req": ["hair_type"],
            "names": ["{brand} {adj} {noun}, {size}", "{brand} {model} {noun}"],
            "adjs": ["Sulfate-Free", "Volumizing", "Frizz Control", "Professional"],
            "uses": ["frizz-prone hair", "salon results at home"],
            "features": [
                "Cold-pressed argan oil smooths frizz and adds shine.",
                "Ionic technology dries hair faster with less heat damage.",
                "Ceramic plates heat to 230 C in 30 seconds.",
            ],
        },
        {
            "code": "MAKE", "weight": 3,
            "nouns": ["Matte Lipstick", "Volumizing Mascara", "Liquid Foundation",
                      "Eyeshadow Palette", "Tinted Lip Balm", "Concealer", "Blush", "Brow Pencil"],
            "price": (6, 59),
            "attrs": {"shade": ["Rosewood", "Nude Beige", "Berry", "Warm Sand", "Deep Cocoa",
                                "Coral Crush", "Soft Taupe", "Classic Red"],
                      "finish": ["Matte", "Satin", "Dewy", "Shimmer"],
                      "size": ["3.5 g", "8 ml", "30 ml"]},
            "req": ["shade"],
            "names": ["{brand} {noun} - {shade}", "{brand} {model} {adj} {noun}, {shade}"],
            "adjs": ["Long-Wear", "Smudge-Proof", "Buildable", "Waterproof"],
            "uses": ["all-day wear", "a natural everyday look"],
            "features": [
                "Long-wear formula lasts up to 16 hours.",
                "Buildable coverage with a natural finish.",
                "Enriched with shea butter and vitamin E.",
            ],
        },
        {
            "code": "BATH", "weight": 2,
            "nouns": ["Body Wash", "Body Lotion", "Bath Salts", "Hand Cream", "Soap Bar",
                      "Body Scrub"],
            "price": (5, 39),
            "attrs": {"size": ["75 ml", "250 ml", "400 ml", "500 g", "120 g"],
                      "scent": ["Eucalyptus Mint", "Lavender", "Oat and Honey", "Crème Brûlée",
                                "Cedarwood", "Unscented", "Grapefruit"]},
            "req": ["scent"],
            "names": ["{brand} {scent} {noun}, {size}", "{brand} {adj} {noun} - {scent}"],
            "adjs": ["Nourishing", "Soothing", "Exfoliating", "Calming"],
            "uses": ["relaxing bath nights", "dry winter skin"],
            "features": [
                "Cold-process soap made in small batches.",
                "Shea butter and colloidal oatmeal soothe dry skin.",
                "Dead Sea salts and essential oils relax tired muscles.",
            ],
        },
        {
            "code": "FRAG", "weight": 1,
            "nouns": ["Eau de Parfum", "Eau de Toilette", "Body Mist", "Solid Perfume"],
            "price": (19, 149),
            "attrs": {"size": ["10 ml", "30 ml", "50 ml", "100 ml"],
                      "scent_family": ["Floral", "Woody", "Citrus", "Amber", "Fresh"],
                      "notes": ["Bergamot, jasmine, sandalwood", "Fig, vetiver, cedar",
                                "Pear, freesia, musk", "Neroli, sea salt, amber"]},
            "req": ["size"],
            "names": ["{brand} {model} {noun}, {size}"],
            "adjs": [],
            "uses": ["evenings out", "everyday wear"],
            "features": [
                "Long-lasting sillage that evolves over the day.",
                "Blended in Grasse with responsibly sourced ingredients.",
            ],
        },
        {
            "code": "TOOL", "weight": 2,
            "nouns": ["Makeup Brush Set", "Electric Toothbrush", "Facial Cleansing Brush",
                      "Jade Roller", "Lighted Makeup Mirror"],
            "price": (8, 199),
            "attrs": {"colour": ["White", "Rose Gold", "Black", "Mint", "Blush Pink"],
                      "battery_life": ["14 days", "30 days", "60 days"],
                      "pieces": ["5", "12", "15"]},
            "req": ["colour"],
            "names": ["{brand} {model} {noun}", "{brand} {adj} {noun} - {colour}"],
            "adjs": ["Rechargeable", "Travel", "Vegan", "Sonic"],
            "uses": ["daily routines", "travel"],
            "features": [
                "Sonic vibrations remove more plaque than a manual brush.",
                "Synthetic vegan bristles, soft and cruelty-free.",
                "Waterproof and USB-C rechargeable.",
            ],
        },
    ],
}

# ---------------------------------------------------------------- grocery
CATEGORIES["grocery"] = {
    "code": "GROC",
    "count": 80,
    "brands": ["Harvest Table", "Golden Acre", "Bellacrema Roasters", "Little Orchard",
               "Tidewater Pantry", "Greenfield Organics", "Saltbox", "Morning Ritual"],
    "series": [],
    "closers": [
        "Store in a cool, dry place.",
        "Packed in a facility that also handles tree nuts.",
        "Resealable bag keeps it fresh.",
        "Certified kosher.",
    ],
    "types": [
        {
            "code": "COFF", "weight": 4,
            "nouns": ["Espresso Whole Bean Coffee", "Medium Roast Ground Coffee",
                      "Decaf Espresso Beans", "Cold Brew Concentrate", "Espresso Pods (20-Pack)",
                      "Dark Roast Whole Bean Coffee", "Single Origin Coffee Beans"],
            "price": (5.49, 29.99),
            "attrs": {"net_weight": ["250 g", "340 g", "454 g", "1 kg", "946 ml", "104 g"],
                      "roast": ["Light", "Medium", "Medium-Dark", "Dark", "Espresso"],
                      "origin": ["Colombia", "Ethiopia", "Brazil", "Guatemala", "Sumatra",
                                 "Blend"],
                      "tasting_notes": ["Chocolate, caramel, hazelnut", "Blueberry, jasmine",
                                        "Toffee, red apple", "Dark cocoa, molasses"],
                      "dietary": ["Organic", "Fair Trade", "Organic, Fair Trade"]},
            "req": ["net_weight", "roast"],
            "names": ["{brand} {origin} {noun}, {net_weight}", "{brand} {adj} {noun}",
                      "{brand} {model} {noun}, {net_weight}"],
            "adjs": ["Organic", "Fair Trade", "Small Batch", "Bold"],
            "uses": ["espresso and milk drinks", "drip, pour-over or French press"],
            "features": [
                "Roasted in small batches and shipped within days of roasting.",
                "A syrupy, low-acid espresso with a thick crema.",
                "Notes of dark chocolate and toasted almond.",
            ],
        },
        {
            "code": "TEAS", "weight": 2,
            "nouns": ["Green Tea", "Earl Grey Tea", "Chamomile Herbal Tea", "Matcha Powder",
                      "Masala Chai", "English Breakfast Tea", "Peppermint Tea"],
            "price": (3.49, 24.99),
            "attrs": {"count": ["20 tea bags", "40 tea bags", "100 tea bags", "100 g loose leaf",
                                "30 g tin"],
                      "origin": ["Japan", "India", "Sri Lanka", "Egypt", "China"],
                      "dietary": ["Organic", "Caffeine-free", "Fair Trade"]},
            "req": ["count"],
            "names": ["{brand} {adj} {noun}, {count}", "{brand} {noun}"],
            "adjs": ["Organic", "Ceremonial Grade", "Loose Leaf", "Decaf"],
            "uses": ["calm afternoons", "lattes and baking"],
            "features": [
                "Whole leaves in plant-based, plastic-free tea bags.",
                "Stone-ground from shade-grown first-harvest leaves.",
            ],
        },
        {
            "code": "SNCK", "weight": 4,
            "nouns": ["Sea Salt Almonds", "Kettle Chips", "Dark Chocolate Bar", "Granola",
                      "Trail Mix", "Protein Bars (12-Pack)", "Rice Crackers", "Dried Mango"],
            "price": (1.99, 24.99),
            "attrs": {"net_weight": ["40 g", "100 g", "150 g", "227 g", "340 g", "500 g"],
                      "flavor": ["Sea Salt", "Honey Roasted", "Chili Lime", "70% Cacao",
                                 "Peanut Butter", "Maple Pecan", "Salted Caramel"],
                      "dietary": ["Gluten-free", "Vegan", "Non-GMO", "Organic", "Keto"]},
            "req": ["net_weight"],
            "names": ["{brand} {flavor} {noun}, {net_weight}", "{brand} {adj} {noun}"],
            "adjs": ["Organic", "Gluten-Free", "Crunchy", "Lightly Salted"],
            "uses": ["lunchboxes and hikes", "afternoon snacking"],
            "features": [
                "Made with simple, recognisable ingredients.",
                "Ten grams of plant protein per serving.",
                "Kettle-cooked in small batches for extra crunch.",
            ],
        },
        {
            "code": "PANT", "weight": 4,
            "nouns": ["Extra Virgin Olive Oil", "Basmati Rice", "Bronze-Cut Spaghetti",
                      "Marinara Sauce", "Maple Syrup", "Raw Honey", "Crunchy Peanut Butter",
                      "Balsamic Vinegar", "Coconut Milk", "Chickpeas"],
            "price": (1.79, 29.99),
            "attrs": {"net_weight": ["400 g", "500 g", "680 g", "1 kg", "2 kg", "500 ml",
                                     "750 ml", "1 L"],
                      "origin": ["Italy", "Greece", "Spain", "Vermont", "India", "Thailand"],
                      "dietary": ["Organic", "Vegan", "Gluten-free", "Non-GMO"]},
            "req": ["net_weight"],
            "names": ["{brand} {adj} {noun}, {net_weight}", "{brand} {origin} {noun}"],
            "adjs": ["Organic", "Cold-Pressed", "Aged", "Wildflower", "Stone-Ground"],
            "uses": ["weeknight pasta", "everyday cooking", "pancake breakfasts"],
            "features": [
                "Cold-pressed within hours of harvest.",
                "Slow-dried pasta holds sauce beautifully.",
                "Unfiltered and unpasteurised.",
            ],
        },
        {
            "code": "SPIC", "weight": 2,
            "nouns": ["Smoked Paprika", "Ground Cinnamon", "Sea Salt Flakes", "Black Peppercorns",
                      "Curry Powder", "Everything Bagel Seasoning", "Chili Flakes"],
            "price": (2.49, 14.99),
            "attrs": {"net_weight": ["40 g", "60 g", "100 g", "250 g"],
                      "origin": ["Spain", "Sri Lanka", "India", "Cornwall", "Vietnam"],
                      "dietary": ["Organic", "Non-irradiated"]},
            "req": ["net_weight"],
            "names": ["{brand} {noun}, {net_weight}", "{brand} {adj} {noun}"],
            "adjs": ["Organic", "Hand-Harvested", "Fresh-Ground"],
            "uses": ["rubs and marinades", "finishing dishes"],
            "features": [
                "Single-origin spices ground in small batches.",
                "Hand-harvested pyramid flakes with a clean, briny crunch.",
            ],
        },
        {
            "code": "BKFS", "weight": 2,
            "nouns": ["Rolled Oats", "Breakfast Cereal", "Pancake Mix", "Overnight Oats Mix",
                      "Muesli"],
            "price": (2.99, 12.99),
            "attrs": {"net_weight": ["400 g", "500 g", "750 g", "1 kg"],
                      "flavor": ["Original", "Cinnamon Apple", "Blueberry", "Chocolate",
                                 "Buttermilk"],
                      "dietary": ["Gluten-free", "Organic", "High fibre"]},
            "req": ["net_weight"],
            "names": ["{brand} {flavor} {noun}, {net_weight}", "{brand} {adj} {noun}"],
            "adjs": ["Organic", "Gluten-Free", "Whole Grain", "Protein"],
            "uses": ["quick breakfasts", "weekend brunch"],
            "features": [
                "Whole grain oats with no added sugar.",
                "Just add water for fluffy pancakes.",
            ],
        },
    ],
}

# ---------------------------------------------------------------- office
CATEGORIES["office"] = {
    "code": "OFFC",
    "count": 60,
    "brands": ["Inkwell", "Paperstone", "Deskwise", "Ledger & Line", "Clearmark", "Foldwell",
               "Studio Nine", "Penmark"],
    "series": ["Pro", "Classic", "Studio", "Essentials", "Atelier", "Scholar"],
    "closers": [
        "FSC-certified paper from responsibly managed forests.",
        "Backed by a satisfaction guarantee.",
        "Ships flat-packed with all tools included.",
        "Refills sold separately.",
    ],
    "types": [
        {
            "code": "NOTE", "weight": 5,
            "nouns": ["Dotted Notebook", "Hardcover Notebook", "Spiral Notebook",
                      "Softcover Journal", "Weekly Planner", "Legal Pads (12-Pack)",
                      "Grid Notebook", "Lined Notebook", "Sketchbook"],
            "price": (3.99, 39.99),
            "attrs": {"paper_size": ["A5", "A4", "B5", "Pocket (A6)", "Letter"],
                      "page_count": ["80 pages", "120 pages", "192 pages", "240 pages"],
                      "ruling": ["Dotted", "Lined", "Grid", "Blank"],
                      "colour": COLOURS,
                      "paper_weight": ["80 gsm", "100 gsm", "120 gsm"]},
            "req": ["paper_size"],
            "names": ["{brand} {adj} {noun}, {paper_size}", "{brand} {noun} - {colour}",
                      "{brand} {model} {noun}, {paper_size}, {ruling}"],
            "adjs": ["Lay-Flat", "Recycled", "Premium", "Linen-Bound", "Waterproof"],
            "uses": ["bullet journaling", "meeting notes", "sketching and planning"],
            "features": [
                "Thick 120 gsm paper resists fountain pen bleed-through.",
                "Lay-flat binding makes it easy to write across both pages.",
                "Numbered pages, an index and two ribbon markers.",
                "An elastic closure and back pocket keep loose notes safe.",
            ],
        },
        {
            "code": "PENS", "weight": 3,
            "nouns": ["Gel Pens (12-Pack)", "Fountain Pen", "Ballpoint Pen", "Fineliner Set",
                      "Highlighters (6-Pack)", "Mechanical Pencil", "Brush Pens"],
            "price": (2.99, 129),
            "attrs": {"ink_colour": ["Black", "Blue", "Assorted", "Pastel", "Blue-Black"],
                      "tip_size": ["0.38 mm", "0.5 mm", "0.7 mm", "Fine nib", "Medium nib"],
                      "material": ["Brass", "Aluminium", "Recycled plastic", "Resin"]},
            "req": ["ink_colour"],
            "names": ["{brand} {model} {noun}", "{brand} {adj} {noun}, {tip_size}"],
            "adjs": ["Quick-Dry", "Smooth-Writing", "Refillable", "Smudge-Proof"],
            "uses": ["note-taking", "journaling and lettering"],
            "features": [
                "Quick-dry ink that does not smear for left-handed writers.",
                "A refillable converter is included.",
                "Knurled grip for precise control.",
            ],
        },
        {
            "code": "DESK", "weight": 3,
            "nouns": ["Desk Organizer", "Monitor Riser", "LED Desk Lamp", "Ergonomic Office Chair",
                      "Standing Desk", "Desk Mat", "Footrest"],
            "price": (12, 649),
            "attrs": {"colour": COLOURS,
                      "material": ["Bamboo", "Felt", "Mesh and aluminium", "Steel", "Vegan leather"],
                      "dimensions": ['31" x 15"', '48" x 24"', '55" x 28"', '12" x 8"']},
            "req": ["material"],
            "names": ["{brand} {model} {noun}", "{brand} {adj} {noun} - {colour}"],
            "adjs": ["Ergonomic", "Adjustable", "Minimalist", "Dual Motor"],
            "uses": ["home offices", "long working days"],
            "features": [
                "Adjustable lumbar support and 4D armrests.",
                "Dual motors raise the desk smoothly with four memory presets.",
                "Dimmable with five colour temperatures.",
            ],
        },
        {
            "code": "FILE", "weight": 2,
            "nouns": ["Expanding File Folder", "Ring Binder", "Label Maker", "Sticky Notes",
                      "Stapler", "Paper Shredder", "Index Cards"],
            "price": (3.49, 149),
            "attrs": {"colour": COLOURS, "pack_size": ["1", "3", "6", "12", "24"],
                      "capacity": ["13 pockets", "50 sheets", "8-sheet cross-cut"]},
            "req": ["colour"],
            "names": ["{brand} {adj} {noun}, {colour}", "{brand} {noun}, Pack of {pack_size}"],
            "adjs": ["Heavy-Duty", "Compact", "Portable", "Recycled"],
            "uses": ["organising paperwork", "small business offices"],
            "features": [
                "Jam-free mechanism with a lifetime warranty.",
                "Made from 100% recycled materials.",
            ],
        },
    ],
}

# ---------------------------------------------------------------- garden
CATEGORIES["garden"] = {
    "code": "GARD",
    "count": 55,
    "brands": ["Greenthumb", "Terra & Twig", "Rootwell", "Sunpatch", "Fernbrook",
               "Gardenia Works", "Bloomfield"],
    "series": ["Pro", "Eco", "Max", "Cordless", "Classic"],
    "closers": [
        "Rust-resistant and built to last for seasons.",
        "Store indoors over winter.",
        "Covered by a three-year warranty.",
    ],
    "types": [
        {
            "code": "TOOL", "weight": 3,
            "nouns": ["Pruning Shears", "Hand Trowel", "Garden Hoe", "Leaf Rake",
                      "Garden Gloves", "Weeding Tool", "Garden Kneeler"],
            "price": (7, 79),
            "attrs": {"material": ["Carbon steel", "Stainless steel", "Ash wood and steel",
                                   "Nitrile-coated nylon"],
                      "size": ["S", "M", "L", "One Size"], "colour": COLOURS},
            "req": ["material"],
            "names": ["{brand} {adj} {noun}", "{brand} {noun} - {colour}"],
            "adjs": ["Ergonomic", "Heavy-Duty", "Bypass", "Non-Slip"],
            "uses": ["weekend gardening", "raised beds and borders"],
            "features": [
                "SK5 steel blades cut cleanly through branches up to 2 cm.",
                "Ergonomic handles reduce wrist strain.",
            ],
        },
        {
            "code": "PLNT", "weight": 3,
            "nouns": ["Ceramic Planter", "Self-Watering Planter", "Raised Garden Bed",
                      "Hanging Basket", "Terracotta Pot Set"],
            "price": (12, 249),
            "attrs": {"material": ["Glazed ceramic", "Terracotta", "Cedar wood",
                                   "Galvanised steel", "Recycled plastic"],
                      "dimensions": ['6"', '8"', '10"', '12"', "4 x 2 ft", "8 x 4 ft"],
                      "colour": COLOURS},
            "req": ["material"],
            "names": ["{brand} {adj} {noun}, {dimensions}", "{brand} {material} {noun}"],
            "adjs": ["Modern", "Indoor/Outdoor", "Elevated", "Frost-Proof"],
            "uses": ["herbs and houseplants", "patio vegetable gardens"],
            "features": [
                "Drainage holes with removable plugs.",
                "A water reservoir keeps roots hydrated for up to two weeks.",
                "Untreated cedar naturally resists rot.",
            ],
        },
        {
            "code": "SEED", "weight": 2,
            "nouns": ["Heirloom Tomato Seeds", "Wildflower Seed Mix", "Herb Garden Kit",
                      "Basil Seeds", "Sunflower Seeds", "Microgreens Kit"],
            "price": (2.49, 29.99),
            "attrs": {"seed_count": ["50 seeds", "200 seeds", "1,000 seeds", "5 varieties"],
                      "sun_exposure": ["Full sun", "Partial shade"],
                      "dietary": ["Organic", "Non-GMO"]},
            "req": ["seed_count"],
            "names": ["{brand} {adj} {noun}", "{brand} {noun}, {seed_count}"],
            "adjs": ["Organic", "Non-GMO", "Pollinator-Friendly", "Indoor"],
            "uses": ["first-time gardeners", "pollinator gardens"],
            "features": [
                "Open-pollinated seeds you can save year after year.",
                "Germination tested for high sprout rates.",
            ],
        },
        {
            "code": "WATR", "weight": 2,
            "nouns": ["Expandable Garden Hose", "Soaker Hose", "Watering Can", "Oscillating Sprinkler",
                      "Hose Reel"],
            "price": (9, 119),
            "attrs": {"length": ["25 ft", "50 ft", "75 ft", "100 ft"],
                      "capacity": ["2 L", "5 L", "9 L"],
                      "material": ["Latex core", "Rubber", "Galvanised steel", "Recycled plastic"]},
            "req": ["material"],
            "names": ["{brand} {adj} {noun}, {length}", "{brand} {noun}"],
            "adjs": ["Kink-Free", "Lightweight", "Heavy-Duty"],
            "uses": ["vegetable beds", "large lawns"],
            "features": [
                "Solid brass fittings will not crack or leak.",
                "Drip-free design saves water.",
            ],
        },
        {
            "code": "POWR", "weight": 2,
            "nouns": ["Cordless Leaf Blower", "Electric Lawn Mower", "Hedge Trimmer",
                      "String Trimmer", "Cordless Chainsaw"],
            "price": (79, 549),
            "attrs": {"voltage": ["20 V", "40 V", "56 V", "80 V"],
                      "battery": ["2.0 Ah included", "4.0 Ah included", "Tool only"],
                      "cutting_width": ['14"', '16"', '20"', '21"']},
            "req": ["voltage"],
            "names": ["{brand} {model} {voltage} {noun}", "{brand} {adj} {noun}"],
            "adjs": ["Brushless", "Cordless", "Self-Propelled", "Quiet"],
            "uses": ["suburban yards", "quick weekend tidy-ups"],
            "features": [
                "A brushless motor delivers gas-like power without the fumes.",
                "Batteries are shared across the whole cordless range.",
            ],
        },
        {
            "code": "OUTD", "weight": 2,
            "nouns": ["Solar Path Lights", "Bird Feeder", "Compost Bin", "Patio String Lights",
                      "Rain Barrel"],
            "price": (14, 199),
            "attrs": {"pack_size": ["1", "4", "8", "12"],
                      "material": ["Cedar", "Powder-coated steel", "Recycled plastic", "Glass"],
                      "length": ["25 ft", "48 ft"]},
            "req": ["material"],
            "names": ["{brand} {adj} {noun}", "{brand} {noun}, Pack of {pack_size}"],
            "adjs": ["Weatherproof", "Squirrel-Proof", "Solar", "Tumbling"],
            "uses": ["patios and pathways", "backyard wildlife"],
            "features": [
                "Charges in daylight and switches on automatically at dusk.",
                "A weighted perch closes the ports when squirrels climb on.",
            ],
        },
    ],
}

# ---------------------------------------------------------------- pet-supplies
CATEGORIES["pet-supplies"] = {
    "code": "PETS",
    "count": 45,
    "brands": ["Happy Tails", "Whisker & Paw", "Barkley", "Purrfect Co.", "Trailpup",
               "Feather & Fin", "Snoutwell"],
    "series": ["Active", "Comfort", "Adventure", "Calm", "Classic"],
    "closers": [
        "Vet recommended.",
        "Machine washable cover.",
        "Made with no artificial colours or preservatives.",
    ],
    "types": [
        {
            "code": "FOOD", "weight": 3,
            "nouns": ["Grain-Free Dry Dog Food", "Salmon Recipe Cat Food", "Puppy Food",
                      "Freeze-Dried Dog Treats", "Dental Chews", "Wet Cat Food (12-Pack)"],
            "price": (4.99, 89.99),
            "attrs": {"pet_type": ["Dog", "Cat", "Puppy", "Kitten"],
                      "net_weight": ["85 g", "340 g", "1.8 kg", "5 kg", "12 kg"],
                      "flavor": ["Chicken", "Salmon", "Lamb and Rice", "Turkey", "Duck"],
                      "life_stage": ["Adult", "Puppy/Kitten", "Senior", "All life stages"]},
            "req": ["pet_type", "net_weight"],
            "names": ["{brand} {flavor} {noun}, {net_weight}", "{brand} {adj} {noun}"],
            "adjs": ["High-Protein", "Limited Ingredient", "Natural"],
            "uses": ["sensitive stomachs", "active breeds"],
            "features": [
                "Real meat is the first ingredient.",
                "Added omega fatty acids support a healthy coat.",
            ],
        },
        {
            "code": "TOYS", "weight": 2,
            "nouns": ["Rope Tug Toy", "Squeaky Plush Toy", "Interactive Feather Wand",
                      "Puzzle Feeder", "Chew Ball", "Catnip Mice (3-Pack)"],
            "price": (4.99, 34.99),
            "attrs": {"pet_type": ["Dog", "Cat"], "size": ["S", "M", "L"],
                      "material": ["Natural rubber", "Cotton rope", "Recycled plush"]},
            "req": ["pet_type"],
            "names": ["{brand} {adj} {noun}", "{brand} {noun}, {size}"],
            "adjs": ["Durable", "Interactive", "Tough Chewer"],
            "uses": ["bored pups", "indoor cats"],
            "features": [
                "Tough enough for power chewers.",
                "Hide treats inside to slow down fast eaters.",
            ],
        },
        {
            "code": "BEDS", "weight": 2,
            "nouns": ["Orthopedic Dog Bed", "Cat Tree", "Heated Pet Bed", "Calming Donut Bed",
                      "Dog Crate Cover"],
            "price": (24, 199),
            "attrs": {"pet_type": ["Dog", "Cat"], "size": ["S", "M", "L", "XL"],
                      "colour": APPAREL_COLOURS,
                      "material": ["Memory foam", "Faux fur", "Sisal and plush"]},
            "req": ["size"],
            "names": ["{brand} {adj} {noun}, {size}", "{brand} {noun} - {colour}"],
            "adjs": ["Washable", "Calming", "Waterproof", "Cozy"],
            "uses": ["senior dogs", "anxious pets"],
            "features": [
                "Orthopedic memory foam supports aching joints.",
                "Raised rim gives pets a sense of security.",
            ],
        },
        {
            "code": "WALK", "weight": 2,
            "nouns": ["Reflective Dog Leash", "No-Pull Dog Harness", "Dog Collar",
                      "Retractable Leash", "Hands-Free Running Leash"],
            "price": (9, 59),
            "attrs": {"size": ["XS", "S", "M", "L"], "colour": COLOURS,
                      "material": ["Nylon webbing", "Leather", "Recycled polyester"]},
            "req": ["size"],
            "names": ["{brand} {adj} {noun} - {colour}", "{brand} {noun}, {size}"],
            "adjs": ["Padded", "Reflective", "Adjustable"],
            "uses": ["evening walks", "runs with your dog"],
            "features": [
                "Reflective stitching for low-light visibility.",
                "A front clip gently discourages pulling.",
            ],
        },
        {
            "code": "CARE", "weight": 2,
            "nouns": ["Deshedding Brush", "Oatmeal Pet Shampoo", "Nail Clippers", "Clumping Cat Litter",
                      "Litter Box", "Aquarium Filter", "Bird Seed Mix"],
            "price": (6.99, 79),
            "attrs": {"pet_type": ["Dog", "Cat", "Fish", "Bird", "Dog and Cat"],
                      "size": ["250 ml", "9 kg", "Standard", "Large"],
                      "scent": ["Unscented", "Lavender", "Fresh"]},
            "req": ["pet_type"],
            "names": ["{brand} {adj} {noun}", "{brand} {noun}, {size}"],
            "adjs": ["Gentle", "Odour Control", "Professional"],
            "uses": ["at-home grooming", "multi-pet homes"],
            "features": [
                "Removes up to 90% of loose undercoat.",
                "Soap-free formula is gentle on sensitive skin.",
            ],
        },
    ],
}

# ---------------------------------------------------------------- books
BOOK_PUBLISHERS = ["Harbor Lane Press", "Quillstone Books", "Meridian House",
                   "Blue Kettle Publishing", "Northlight Editions", "Paper Lantern",
                   "Ashgrove & Sons", "Riverbend Press", "Éditions Mirabelle"]
FIRST_NAMES = ["Amelia", "Jonah", "Priya", "Mateo", "Hannah", "Tobias", "Ines", "Marcus",
               "Leila", "Oskar", "Naomi", "Felix", "Sofia", "Kenji", "Clara", "Diego",
               "Ruth", "Elliot", "Zara", "Henrik", "Maya", "Samuel", "Chloé", "Rafael",
               "Ingrid", "Theo", "Aisha", "Lucas", "Greta", "Omar"]
LAST_NAMES = ["Hartley", "Okafor", "Lindqvist", "Moreau", "Castellano", "Whitaker", "Nakamura",
              "Brennan", "Achterberg", "Delacroix", "Fairbanks", "Kowalski", "Reyes", "Sato",
              "Holloway", "Ashby", "Mbeki", "Thornton", "Vasquez", "Galloway", "Fitzroy",
              "Quinlan", "Ramaswamy", "Ellison", "Novak", "Albrecht", "Pemberton", "Calloway"]
BOOK_GENRES = {
    "FICT": {
        "weight": 5, "genre": "Literary Fiction",
        "titles": ["The {adj} {noun}", "{noun} of {place}", "A {season} in {place}",
                   "The {noun}'s Daughter", "What the {noun} Remembers", "The Last {noun}"],
        "subtitles": ["A Novel"],
        "premises": ["two estranged sisters who return to their family's failing vineyard",
                     "a lighthouse keeper who finds a stranger washed ashore",
                     "a widowed piano teacher and the student who changes her life",
                     "three generations of a family living above a bakery in Lisbon",
                     "a cartographer mapping a coastline that keeps changing"],
        "blurbs": ["A luminous, tender novel", "A sweeping family saga",
                   "A quietly devastating debut", "A warm and witty story"],
    },
    "MYST": {
        "weight": 4, "genre": "Mystery & Thriller",
        "titles": ["Murder at {place}", "The {place} Affair", "The {adj} Witness",
                   "Death in {season}", "The {noun} Cipher", "Nobody Leaves {place}"],
        "subtitles": ["A Detective Novel", "A Thriller", "An Inspector Hale Mystery"],
        "premises": ["a retired detective pulled into one final case",
                     "a locked-room murder at a snowbound mountain hotel",
                     "a podcast host who uncovers a decades-old disappearance",
                     "a forensic accountant who follows the money to a small coastal town"],
        "blurbs": ["A twisting, page-turning thriller", "A clever, atmospheric mystery",
                   "A pulse-pounding suspense novel"],
    },
    "SCFI": {
        "weight": 3, "genre": "Science Fiction & Fantasy",
        "titles": ["The {noun} of the {adj} Stars", "{noun}fall", "Children of {place}",
                   "The {adj} Gate", "Beyond the {noun} Sea", "Engines of {noun}"],
        "subtitles": ["Book One of the Ember Trilogy", "A Novel", "The Drift Cycle, Book 2"],
        "premises": ["a generation ship whose crew has forgotten its destination",
                     "a young mapmaker who can see the threads of magic",
                     "a first-contact team on a tidally locked planet",
                     "a rebellion brewing in a city built on the back of a giant"],
        "blurbs": ["An inventive, immersive epic", "A mind-bending science fiction adventure",
                   "A richly imagined fantasy"],
    },
    "COOK": {
        "weight": 3, "genre": "Cookbooks",
        "titles": ["The {food} Kitchen", "Simple {food}", "Everyday {food}",
                   "{food} at Home", "The Art of {food}", "Salt, Smoke and {food}"],
        "subtitles": ["100 Recipes for Every Day", "Recipes and Stories",
                      "A Home Cook's Guide", "Plant-Based Recipes for Busy Weeknights"],
        "premises": ["weeknight dinners that come together in thirty minutes",
                     "the techniques behind cafe-style espresso drinks and pastries",
                     "slow-fermented sourdough and rustic breads",
                     "vibrant vegetarian dishes from the Mediterranean coast"],
        "blurbs": ["A beautifully photographed cookbook", "An essential kitchen companion",
                   "A joyful collection of recipes"],
    },
    "BIZZ": {
        "weight": 2, "genre": "Business & Economics",
        "titles": ["The {adj} Manager", "Small Bets, Big {noun}", "The {noun} Advantage",
                   "Leading from the {noun}", "Built to {verb}"],
        "subtitles": ["How Great Teams Make Better Decisions", "Lessons from Founders",
                      "A Practical Guide to Growth"],
        "premises": ["how small teams outcompete large organisations",
                     "practical frameworks for hiring, feedback and delegation",
                     "the economics of subscription businesses"],
        "blurbs": ["A sharp, actionable guide", "An insightful, research-backed book"],
    },
    "SELF": {
        "weight": 3, "genre": "Health & Self-Help",
        "titles": ["The Art of {gerund}", "Yoga for {audience}", "The {adj} Mind",
                   "Run {adj}", "{number} Habits for a {adj} Life", "The Sleep {noun}"],
        "subtitles": ["A Beginner's Guide", "Simple Practices for Everyday Calm",
                      "The Science of Feeling Better", "A 12-Week Plan"],
        "premises": ["gentle yoga sequences and breathing practices anyone can start",
                     "building a sustainable running habit from your first 5K to a marathon",
                     "the science of sleep and how to fix it",
                     "small daily habits that compound into lasting change"],
        "blurbs": ["A practical, compassionate guide", "An encouraging, evidence-based handbook"],
    },
    "HIST": {
        "weight": 2, "genre": "History & Biography",
        "titles": ["The {noun} Road", "Empire of {noun}", "The Age of {noun}",
                   "A History of {food}", "The {adj} Century"],
        "subtitles": ["A History", "How One Idea Changed the World", "A Biography"],
        "premises": ["the trade routes that carried spices, coffee and ideas across continents",
                     "the forgotten engineers who built the first railways",
                     "the rise and fall of a Renaissance banking dynasty"],
        "blurbs": ["A vivid, deeply researched history", "A gripping narrative history"],
    },
    "TECH": {
        "weight": 2, "genre": "Computers & Technology",
        "titles": ["Programming {tech}", "Practical {tech}", "Learning {tech}",
                   "{tech} in Action", "Designing {tech} Systems", "The {tech} Handbook"],
        "subtitles": ["A Hands-On Introduction", "Patterns for Production",
                      "From Beginner to Professional", "Second Edition"],
        "premises": ["writing fast, reliable software with modern tooling",
                     "designing systems that scale from one server to thousands",
                     "real-world projects with tests, benchmarks and deployment"],
        "blurbs": ["A clear, example-driven guide", "The definitive practical reference"],
    },
    "KIDS": {
        "weight": 3, "genre": "Children's Books",
        "titles": ["{kid} the {animal} Goes to {place}", "The {adj} Little {animal}",
                   "Goodnight, {animal}", "{kid} and the {noun}", "Where Is {kid}'s {noun}?"],
        "subtitles": ["A Picture Book", "Bedtime Stories", "An Early Reader"],
        "premises": ["a shy little animal who learns to make friends",
                     "a bedtime adventure through a moonlit forest",
                     "counting, colours and a very hungry caterpillar-like friend"],
        "blurbs": ["A charming read-aloud", "A sweet, funny picture book"],
    },
}
BOOK_WORDS = {
    "adj": ["Silent", "Hidden", "Burning", "Forgotten", "Golden", "Broken", "Distant",
            "Quiet", "Crimson", "Winter", "Bright", "Restless", "Paper", "Salt", "Glass",
            "Wild", "Curious", "Honest", "Fearless", "Mindful", "Brave", "Sleepy"],
    "noun": ["Harbor", "Orchard", "Lantern", "Cartographer", "River", "Garden", "Clockmaker",
             "Tide", "Mountain", "Archive", "Signal", "Ember", "Compass", "Island", "Letter",
             "Raven", "Meridian", "Lighthouse", "Frontier", "Balance", "Habit", "Engine",
             "Moon", "Kite", "Secret", "Ocean"],
    "place": ["Marrow Bay", "Ashford", "Kestrel Point", "Lisbon", "the North", "Eldermoor",
              "Saltmarsh", "Vienna", "Blackwater", "the Valley", "Port Isla", "Havenfield"],
    "season": ["Winter", "Summer", "Autumn", "Spring", "August", "November"],
    "food": ["Espresso", "Sourdough", "Pasta", "Vegetable", "Spice", "Noodle", "Baking",
             "Grill", "Coffee", "Tea", "Fermentation", "Chocolate"],
    "verb": ["Last", "Scale", "Adapt", "Win"],
    "gerund": ["Breathing", "Rest", "Running", "Slowing Down", "Focus", "Stretching"],
    "audience": ["Beginners", "Runners", "Every Body", "Busy People", "Better Sleep"],
    "number": ["Seven", "Ten", "Twelve", "Five"],
    "tech": ["Rust", "Python", "Distributed", "Data-Intensive", "Machine Learning",
             "Web APIs", "Cloud Native", "SQL", "Go", "TypeScript", "Search Engine"],
    "kid": ["Pip", "Luna", "Milo", "Ada", "Ollie", "Nell"],
    "animal": ["Bear", "Fox", "Otter", "Owl", "Hedgehog", "Badger", "Penguin", "Mouse"],
}
BOOK_FORMATS = [("Paperback", 1.0), ("Hardcover", 1.6), ("Kindle Edition", 0.6),
                ("Audiobook CD", 1.4), ("Board Book", 0.8)]

CATEGORIES["books"] = {"code": "BOOK", "count": 110, "brands": BOOK_PUBLISHERS}

GAME_TITLES = ["Harbor Lights", "Kingdomfall", "Tiny Farms", "Lost Expedition", "Starport",
               "Wordsmith", "Nightmarket", "Tidepool", "Ticket Quest", "Mosaic Gardens",
               "Cartographers' Guild", "Sushi Sprint", "Volcano Panic", "Trivia Tonight",
               "Castle Clash", "Dragon Dice", "Orchard Rush", "Robot Relay"]


# --------------------------------------------------------------------------
# Generation helpers
# --------------------------------------------------------------------------

FIELD_RE = re.compile(r"{(\w+)}")


def weighted(rng: random.Random, items):
    """items: list of (value, weight)."""
    total = sum(w for _, w in items)
    x = rng.random() * total
    for value, w in items:
        x -= w
        if x < 0:
            return value
    return items[-1][0]


def make_price(rng: random.Random, lo: float, hi: float) -> str:
    """Realistic price between lo and hi, skewed low, with charm endings."""
    lo_c, hi_c = round(lo * 100), round(hi * 100)
    # log-uniform-ish, skewed toward the low end of the range
    u = rng.random() ** 1.35
    raw = lo * (hi / lo) ** u
    dollars = int(raw)
    if dollars >= 200:
        # 249.99, 299.00, 1199.99 ...
        dollars = (dollars // 10) * 10 + 9
        cents = weighted(rng, [(99, 70), (0, 20), (95, 10)])
    elif dollars >= 20:
        if rng.random() < 0.5:
            dollars = (dollars // 5) * 5 + 4  # 24.99, 39.99, 44.99 ...
        cents = weighted(rng, [(99, 55), (49, 15), (0, 15), (95, 8), (50, 7)])
    else:
        cents = weighted(rng, [(99, 45), (49, 20), (0, 10), (29, 8), (79, 8), (95, 5), (25, 4)])
    value = dollars * 100 + cents
    value = max(lo_c, min(hi_c, value))
    return f"{value // 100}.{value % 100:02d}"


def make_model(rng: random.Random, series: list[str]) -> str:
    base = rng.choice(series)
    style = rng.random()
    if style < 0.35:
        return f"{base} {rng.choice([100, 200, 300, 350, 500, 700, 900, 45, 60, 80])}"
    if style < 0.55:
        return f"{base} {rng.choice(['Pro', 'Max', 'Lite', 'Mini', 'Plus', 'Air', 'SE'])}"
    if style < 0.75:
        return f"{base} {rng.randint(2, 7)}"
    if style < 0.9:
        return f"{base} {rng.choice('XSZ')}{rng.randint(1, 9)}"
    return base


def attr_value(rng: random.Random, spec) -> str:
    return spec(rng) if callable(spec) else rng.choice(spec)


def fill(template: str, ctx: dict[str, str]) -> str | None:
    keys = FIELD_RE.findall(template)
    if any(not ctx.get(k) for k in keys):
        return None
    return FIELD_RE.sub(lambda m: ctx[m.group(1)], template)


def clean_spaces(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def pick_attr_count(rng: random.Random) -> int:
    return weighted(rng, [(1, 6), (2, 18), (3, 32), (4, 28), (5, 16)])


# Scaled-up catalogs only (--count above 1200): see extra_brands and the
# variants of generic_product and book_product.
VARIANT_AFTER = 8
BRAND_HEADS = ["Al", "Bel", "Cor", "Dal", "El", "Fen", "Gal", "Hal", "Ist", "Jun", "Kal", "Lor",
               "Mar", "Nor", "Or", "Pel", "Quen", "Ros", "Sol", "Tor", "Ul", "Val", "Wen",
               "Yar", "Zel", "Bram", "Cal", "Dun", "Ever", "Far", "Glen", "Hart", "Lin", "Mor",
               "Oak", "Red", "Silver", "Stone", "Thorn", "Wild"]
BRAND_TAILS = ["ara", "ex", "ion", "ora", "ix", "en", "ova", "ly", "wick", "ford", "ton",
               "crest", "mark", "line", "haven", "field", "works", "craft", "bury", "dale",
               "well", "wood", "ridge", "brook", "vale", "stead", "gate", "moor", "isle"]
BRAND_WORDS = {
    "electronics": ["Audio", "Labs", "Digital", "Tech", "Electronics"],
    "home-kitchen": ["Kitchen", "Home", "Cookware", "Living"],
    "clothing": ["Apparel", "Clothing Co.", "Outfitters", "Basics"],
    "shoes": ["Footwear", "Shoe Co.", "Athletics"],
    "sports-outdoors": ["Outdoors", "Gear", "Sports", "Athletics"],
    "toys-games": ["Toys", "Games", "Playthings"],
    "beauty": ["Beauty", "Botanicals", "Skincare", "Naturals"],
    "grocery": ["Pantry", "Farms", "Foods", "Roasters"],
    "office": ["Paper Co.", "Office", "Stationery"],
    "garden": ["Garden", "Growers", "Outdoor Living"],
    "pet-supplies": ["Pet Co.", "Pets", "Companions"],
    "books": ["Press", "Books", "Publishing", "Editions"],
    "*": ["Co."],
}
BOOK_EDITIONS = ["Revised Edition", "Second Edition", "Third Edition", "Anniversary Edition",
                 "Large Print Edition", "Illustrated Edition", "Collector's Edition",
                 "Deluxe Edition", "Annotated Edition", "Book Club Edition"]


def variant_suffix(rng: random.Random, name: str) -> str:
    """What tells a variant from its namesake: a generation, a model year, a
    model code, a pack size or a colour not already in the name."""
    kind = rng.randrange(5)
    if kind == 0:
        return f"(Gen {rng.randint(2, 9)})"
    if kind == 1:
        return f"({rng.randint(2016, 2025)} Model)"
    if kind == 2:
        return f"Model {rng.choice('ABCDEFGHJKLMNPRSTVWXZ')}{rng.randint(10, 999)}"
    if kind == 3:
        return f"(Pack of {rng.choice([2, 3, 4, 5, 6, 8, 10, 12, 24])})"
    colour = rng.choice(COLOURS)
    return f"- {colour}" if colour.lower() not in name.lower() else f"(Gen {rng.randint(2, 9)})"


def generic_product(rng: random.Random, cat_slug: str, cat: dict, used_names: set[str],
                    variants: bool = False):
    ttype = weighted(rng, [(t, t["weight"]) for t in cat["types"]])
    for attempt in range(200):
        brand = rng.choice(cat["brands"])
        noun = rng.choice(ttype["nouns"])
        all_vals = {k: attr_value(rng, spec) for k, spec in ttype["attrs"].items()}
        ctx = dict(all_vals)
        ctx["brand"] = brand
        ctx["noun"] = noun
        ctx["adj"] = rng.choice(ttype["adjs"]) if ttype["adjs"] else ""
        ctx["model"] = make_model(rng, cat["series"]) if cat["series"] else ""
        ctx["who"] = rng.choice(ttype["whos"]) if ttype.get("whos") else ""
        ctx["game_title"] = rng.choice(GAME_TITLES)
        ctx["theme"] = all_vals.get("theme", "")
        templates = list(ttype["names"])
        rng.shuffle(templates)
        name = None
        used_keys: list[str] = []
        for tpl in templates:
            filled = fill(tpl, ctx)
            if filled:
                name = clean_spaces(filled)
                used_keys = [k for k in FIELD_RE.findall(tpl) if k in all_vals]
                break
        if variants and name and name in used_names and attempt >= VARIANT_AFTER:
            # A scaled-up catalog runs out of plain names: real shops list
            # variants of the same product under model years, generations,
            # colours and pack sizes.
            name = clean_spaces(f"{name} {variant_suffix(rng, name)}")
        if not name or name in used_names or not (3 <= len(name) <= 120):
            continue
        # Avoid silly duplications such as "Waterproof Waterproof Speaker".
        words = name.lower().split()
        if any(a == b for a, b in zip(words, words[1:])):
            continue

        # attributes: keys used in the name + required + random extras
        keys: list[str] = []
        for k in used_keys + ttype["req"]:
            if k not in keys:
                keys.append(k)
        target = max(len(keys), pick_attr_count(rng))
        extras = [k for k in all_vals if k not in keys]
        rng.shuffle(extras)
        keys += extras[: max(0, target - len(keys))]
        keys = keys[:5]
        order = list(all_vals)
        attributes = {k: all_vals[k] for k in sorted(keys, key=order.index)}

        description = make_description(rng, cat, ttype, brand, ctx, attributes)
        used_names.add(name)
        return {
            "sku_code": ttype["code"],
            "name": name,
            "description": description,
            "brand": brand,
            "price": make_price(rng, *ttype["price"]),
            "attributes": attributes,
        }
    raise RuntimeError(f"could not generate a unique name for {cat_slug}/{ttype['code']}")


INTRO_TEMPLATES = [
    "Designed by {brand} for {use}.",
    "A dependable pick from {brand}, made for {use}.",
    "Built for {use}, with the attention to detail {brand} is known for.",
    "{brand}'s take on the classic {noun_l}, made for {use}.",
    "Part of the {brand} {series} line, made for {use}.",
    "Made for {use}.",
]
MATERIAL_TEMPLATES = [
    "Made from {material_l}.",
    "Crafted from {material_l} for lasting durability.",
    "The {material_l} construction is built to last.",
]


def make_description(rng, cat, ttype, brand, ctx, attributes) -> str:
    use = rng.choice(ttype["uses"])
    model = ctx.get("model") or ""
    series = model.split(" ")[0] if model else ""
    material = attributes.get("material") or ctx.get("material") or ""
    dctx = {"brand": brand, "use": use, "noun_l": ctx["noun"].lower(), "series": series,
            "material_l": material[:1].lower() + material[1:] if material else ""}

    sentences: list[str] = []
    if rng.random() < 0.75:
        tpls = list(INTRO_TEMPLATES)
        rng.shuffle(tpls)
        for tpl in tpls:
            s = fill(tpl, dctx)
            if s:
                sentences.append(s)
                break
    feats = list(ttype["features"])
    rng.shuffle(feats)
    sentences += feats[:2]
    if material and rng.random() < 0.5:
        sentences.append(fill(rng.choice(MATERIAL_TEMPLATES), dctx))
    if rng.random() < 0.4:
        sentences.append(rng.choice(cat["closers"]))

    n = weighted(rng, [(1, 12), (2, 40), (3, 48)])
    if len(sentences) > n:
        # keep the intro (if any) and a random subset of the rest, in order
        head, rest = sentences[:1], sentences[1:]
        keep = sorted(rng.sample(range(len(rest)), n - 1))
        sentences = head + [rest[i] for i in keep]
    return " ".join(sentences)


def isbn13(rng: random.Random) -> str:
    digits = [9, 7, 8, 1] + [rng.randint(0, 9) for _ in range(8)]
    check = (10 - sum(d * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits)) % 10) % 10
    digits.append(check)
    s = "".join(map(str, digits))
    return f"{s[:3]}-{s[3]}-{s[4:8]}-{s[8:12]}-{s[12]}"


def book_product(rng: random.Random, used_names: set[str], publishers: list[str] = BOOK_PUBLISHERS,
                 variants: bool = False):
    code = weighted(rng, [(k, g["weight"]) for k, g in BOOK_GENRES.items()])
    g = BOOK_GENRES[code]
    for attempt in range(500):
        words = {k: rng.choice(v) for k, v in BOOK_WORDS.items()}
        title = fill(rng.choice(g["titles"]), words)
        subtitle = rng.choice(g["subtitles"]) if rng.random() < 0.55 else ""
        name = f"{title}: {subtitle}" if subtitle else title
        fmt, mult = rng.choice(BOOK_FORMATS if code == "KIDS" else BOOK_FORMATS[:4])
        if name in used_names:
            name = f"{name} ({fmt})"
        if variants and name in used_names and attempt >= VARIANT_AFTER:
            name = f"{name}, {rng.choice(BOOK_EDITIONS)}"
        if name in used_names or len(name) > 120:
            continue
        used_names.add(name)
        author = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        pages = rng.randint(24, 64) if code == "KIDS" else rng.randint(160, 720)
        base_lo, base_hi = (8, 22) if code in ("KIDS", "FICT", "MYST", "SCFI") else (12, 38)
        lo = max(8, base_lo * mult)
        hi = min(45, base_hi * mult + 4)
        attributes = {"author": author, "format": fmt}
        extra = [("pages", str(pages)), ("genre", g["genre"]),
                 ("language", weighted(rng, [("English", 90), ("Spanish", 4), ("French", 4),
                                             ("German", 2)])),
                 ("isbn", isbn13(rng)),
                 ("publication_year", str(rng.randint(1998, 2024)))]
        rng.shuffle(extra)
        n = pick_attr_count(rng)
        for k, v in extra[: max(0, min(5, n) - 2)]:
            attributes[k] = v
        blurb = rng.choice(g["blurbs"])
        premise = rng.choice(g["premises"])
        sentences = [f"{blurb} about {premise}."]
        more = [
            f"{author} writes with warmth, precision and a sharp eye for detail.",
            f"From the {rng.choice(['award-winning', 'bestselling', 'acclaimed'])} author of "
            f"{fill(rng.choice(g['titles']), {k: rng.choice(v) for k, v in BOOK_WORDS.items()})}.",
            f"This {fmt.lower()} edition runs {pages} pages" +
            (" with full-colour illustrations." if code in ("KIDS", "COOK") else "."),
            "Perfect for book clubs, with a reader's guide at the back."
            if code in ("FICT", "MYST") else "Includes an index and suggestions for further reading."
            if code in ("HIST", "BIZZ", "TECH") else "A wonderful gift for curious readers.",
        ]
        rng.shuffle(more)
        sentences += more[: weighted(rng, [(0, 15), (1, 45), (2, 40)])]
        return {
            "sku_code": code,
            "name": name,
            "description": " ".join(sentences),
            "brand": rng.choice(publishers),
            "price": make_price(rng, lo, hi),
            "attributes": attributes,
        }
    raise RuntimeError("could not generate a unique book title")


def stock_plan(rng: random.Random, n: int) -> list[str]:
    zero = round(n * 0.05)
    low = round(n * 0.10)
    plan = ["zero"] * zero + ["low"] * low + ["ok"] * (n - zero - low)
    rng.shuffle(plan)
    return plan


def make_threshold(rng: random.Random) -> int:
    return weighted(rng, [(10, 60), (5, 8), (3, 3), (8, 7), (12, 6), (15, 7), (20, 6), (25, 3)])


def make_on_hand(rng: random.Random, status: str, threshold: int) -> int:
    if status == "zero":
        return 0
    if status == "low":
        return rng.randint(1, threshold)
    lo = max(11, threshold + 1)
    bucket = weighted(rng, [("small", 10), ("core", 72), ("large", 18)])
    if bucket == "small" and lo < 20:
        return rng.randint(lo, 19)
    if bucket == "large":
        return rng.randint(151, 500)
    return max(lo, min(150, round(rng.triangular(20, 150, 45))))


def scaled_counts(count: int) -> dict[str, int]:
    """Products per category: the sample's shares, scaled to ``count``
    (largest remainders get the leftover products)."""
    base = {slug: c["count"] for slug, c in CATEGORIES.items()}
    assert sum(base.values()) == TOTAL, sum(base.values())
    if count == TOTAL:
        return base
    exact = {slug: n * count / TOTAL for slug, n in base.items()}
    counts = {slug: int(x) for slug, x in exact.items()}
    left = count - sum(counts.values())
    for slug in sorted(exact, key=lambda s: (counts[s] - exact[s], s))[:left]:
        counts[slug] += 1
    return counts


def extra_brands(seed: int, slug: str, base: list[str], count: int) -> list[str]:
    """Invented brands added to a category when the catalog is scaled up: a
    bigger shop carries more brands (about sqrt(count / 1200) times as many),
    while the sample's brands stay. Deterministic for (seed, slug)."""
    scale = count / TOTAL
    want = round(len(base) * (math.sqrt(scale) - 1)) if scale > 1 else 0
    rng = random.Random(f"{seed}/{slug}/brands")
    taken = {b.lower() for b in base}
    extra: list[str] = []
    while len(extra) < want:
        name = rng.choice(BRAND_HEADS) + rng.choice(BRAND_TAILS)
        if rng.random() < 0.35:
            name = f"{name} {rng.choice(BRAND_WORDS.get(slug, BRAND_WORDS['*']))}"
        if name.lower() not in taken:
            taken.add(name.lower())
            extra.append(name)
    return extra


def generate(count: int = TOTAL, seed: int = SEED) -> list[dict]:
    """The catalog. With the defaults it is the shipped sample, byte for byte;
    a larger ``count`` keeps the category shares, adds invented brands and,
    once plain names run out, product variants."""
    rng = random.Random(seed)
    counts = scaled_counts(count)
    scaled = count > TOTAL
    cats = {slug: dict(c) for slug, c in CATEGORIES.items()}
    if scaled:
        for slug, c in cats.items():
            c["brands"] = list(c["brands"]) + extra_brands(seed, slug, c["brands"], count)
    slots = [slug for slug, n in counts.items() for _ in range(n)]
    rng.shuffle(slots)
    plan = stock_plan(rng, count)
    used_names: set[str] = set()
    products = []
    for idx, slug in enumerate(slots, start=1):
        cat = cats[slug]
        if slug == "books":
            p = book_product(rng, used_names, cat["brands"], variants=scaled)
        else:
            p = generic_product(rng, slug, cat, used_names, variants=scaled)
        threshold = make_threshold(rng)
        products.append({
            "id": idx,
            "sku": f"{cat['code']}-{p['sku_code']}-{idx:06d}",
            "name": p["name"],
            "description": p["description"],
            "category": slug,
            "brand": p["brand"],
            "price": p["price"],
            "attributes": p["attributes"],
            "low_stock_threshold": threshold,
            "on_hand": make_on_hand(rng, plan[idx - 1], threshold),
        })
    return products


# --------------------------------------------------------------------------
# Validation (python3 data/generate_catalog.py --check)
# --------------------------------------------------------------------------

FIELDS = ["id", "sku", "name", "description", "category", "brand", "price", "attributes",
          "low_stock_threshold", "on_hand"]
KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
SLUG_RE = re.compile(r"^[a-z]+(-[a-z]+)*$")


def check(path: Path, total: int = TOTAL) -> None:
    raw = path.read_bytes()
    assert raw.endswith(b"\n") and not raw.endswith(b"\n\n")
    lines = raw.decode("utf-8").split("\n")[:-1]
    assert len(lines) == total, len(lines)
    skus, names = set(), set()
    zero = low = 0
    per_cat: dict[str, int] = {}
    for i, line in enumerate(lines, start=1):
        obj = json.loads(line)
        assert json.dumps(obj, separators=(",", ":"), ensure_ascii=False) == line
        assert list(obj) == FIELDS, list(obj)
        assert type(obj["id"]) is int and obj["id"] == i
        for f in ("sku", "name", "description", "category", "brand", "price"):
            assert isinstance(obj[f], str) and obj[f].strip() == obj[f] and obj[f], (i, f)
        assert len(obj["sku"]) <= 64 and obj["sku"] not in skus
        skus.add(obj["sku"])
        assert 3 <= len(obj["name"]) <= 120 and obj["name"] not in names
        names.add(obj["name"])
        assert len(obj["description"]) <= 600
        assert SLUG_RE.match(obj["category"])
        assert len(obj["brand"]) <= 60
        d = Decimal(obj["price"])
        assert d > 0 and d.as_tuple().exponent == -2 and re.fullmatch(r"\d+\.\d\d", obj["price"])
        attrs = obj["attributes"]
        assert isinstance(attrs, dict) and 1 <= len(attrs) <= 5
        for k, v in attrs.items():
            assert KEY_RE.match(k) and len(k) <= 32
            assert isinstance(v, str) and v and len(v) <= 80
        t = obj["low_stock_threshold"]
        assert type(t) is int and 3 <= t <= 25
        oh = obj["on_hand"]
        assert type(oh) is int and 0 <= oh <= 500
        if oh == 0:
            zero += 1
        elif oh <= t:
            low += 1
        else:
            assert oh >= 11
        per_cat[obj["category"]] = per_cat.get(obj["category"], 0) + 1
    print(f"OK: {len(lines)} products, {len(per_cat)} categories")
    for slug, n in sorted(per_cat.items(), key=lambda kv: -kv[1]):
        print(f"  {slug:16s} {n}")
    brands = len({json.loads(line)["brand"] for line in lines})
    print(f"  sold out (0): {zero}, low (1..=threshold): {low}, in stock: {total - zero - low}")
    print(f"  brands: {brands}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Generate Mercato's product catalog (JSON lines). With no options: the "
                    "shipped sample, data/catalog.jsonl, 1,200 products.")
    parser.add_argument("--count", type=int, default=TOTAL,
                        help=f"number of products, 1..999999 (default {TOTAL}: the sample)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    parser.add_argument("--out", type=Path,
                        help="output file (default: data/catalog.jsonl for the sample, "
                             "data/catalog-COUNT[-SEED].jsonl otherwise; '-' for stdout)")
    parser.add_argument("--check", action="store_true",
                        help="validate the written file and print a summary")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= 999_999:
        parser.error("--count must be between 1 and 999999")
    out = args.out
    if out is None:
        if args.count == TOTAL and args.seed == SEED:
            out = OUT_PATH
        else:
            suffix = "" if args.seed == SEED else f"-{args.seed}"
            out = OUT_PATH.with_name(f"catalog-{args.count}{suffix}.jsonl")
    products = generate(args.count, args.seed)
    to_stdout = str(out) == "-"
    fh = sys.stdout if to_stdout else out.open("w", encoding="utf-8", newline="\n")
    try:
        for p in products:
            fh.write(json.dumps(p, separators=(",", ":"), ensure_ascii=False))
            fh.write("\n")
    finally:
        if not to_stdout:
            fh.close()
    if not to_stdout:
        print(f"wrote {len(products)} products to {out}")
        if args.check:
            check(out, args.count)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
