"""What espeak-ng says for the spoken-digit data: every language's digits, other words
and letter names for the unknown class, and its voice variants."""

# What espeak-ng says for each digit, and words it says for the unknown class.
DIGIT_WORDS = {
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "es": ("cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"),
    "fr": ("zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"),
    "it": ("zero", "uno", "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove"),
    "ru": ("ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь",
           "девять"),
}
OTHER_WORDS = {
    "en": ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "hello",
           "cancel", "menu", "again", "ten", "twenty", "hundred", "phone", "call", "back"),
    "es": ("sí", "no", "arriba", "abajo", "izquierda", "derecha", "hola", "diez", "cien",
           "menú", "llamar", "otra", "vez", "gracias", "adiós", "casa", "perro", "mesa"),
    "fr": ("oui", "non", "haut", "bas", "gauche", "droite", "bonjour", "dix", "cent", "menu",
           "appeler", "encore", "merci", "maison", "chien", "table", "rouge", "vert"),
    "it": ("sì", "no", "su", "giù", "sinistra", "destra", "ciao", "dieci", "cento", "menu",
           "chiamare", "ancora", "grazie", "casa", "cane", "tavolo", "rosso", "verde"),
    "ru": ("да", "нет", "вверх", "вниз", "влево", "вправо", "привет", "десять", "сто",
           "меню", "позвонить", "снова", "спасибо", "дом", "собака", "стол", "красный"),
}
# Letter names, which the held-out speakers' other words are full of ("b", "d", "e", "g",
# "t" sound like parts of digits); said by espeak-ng as words of the unknown class.
LETTER_NAMES = {
    "en": ("bee", "cee", "dee", "ee", "gee", "pee", "tee", "vee", "zed", "kay", "jay", "ell",
           "em", "ess", "ex", "aitch", "cue", "are"),
    "es": ("be", "ce", "de", "efe", "ge", "hache", "jota", "ka", "ele", "eme", "ene", "pe",
           "cu", "erre", "ese", "te", "uve", "equis"),
    "fr": ("bé", "cé", "dé", "effe", "gé", "hache", "ji", "ka", "elle", "emme", "enne", "pé",
           "ku", "erre", "esse", "té", "vé", "iks"),
    "it": ("bi", "ci", "di", "effe", "gi", "acca", "i lunga", "cappa", "elle", "emme", "enne",
           "pi", "cu", "erre", "esse", "ti", "vu", "zeta"),
    "ru": ("бэ", "вэ", "гэ", "дэ", "жэ", "зэ", "ка", "эль", "эм", "эн", "пэ", "эр", "эс", "тэ",
           "эф", "ха", "цэ", "ша"),
}
VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3", "+f4",
            "+f5", "+croak", "+klatt", "+klatt2", "+klatt3", "+klatt4", "+whisper", "+Andy",
            "+Annie", "+Denis", "+Gene", "+Lee", "+Mario", "+Michael", "+Mike", "+Storm",
            "+adam", "+anika", "+aunty", "+belinda", "+benjamin", "+boris", "+caleb", "+david",
            "+ed", "+edward", "+grandma", "+grandpa", "+ian", "+john", "+linda", "+max",
            "+michel", "+norbert", "+pablo", "+paul", "+pedro", "+quincy", "+robert", "+steph",
            "+travis", "+victor", "+zac")
